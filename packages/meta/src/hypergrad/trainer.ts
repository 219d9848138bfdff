/**
 * @file Online bilevel training: alternating base steps on θ (exact ∇θL_T) and meta steps on λ (any
 * HypergradEstimator), in either order — meta-first as Meta-Weight-Net, base-first as the EvoGrad rotation
 * experiment — with separate in-place optimisers for θ and λ and a per-step log of losses, hypergradient norms,
 * peak memory and time. The computations are in online-steps.ts, the options in online-options.ts.
 *
 * EvoGrad's hypergradient is ~σ²(K−1)/(Kτ) times the T1–T2 direction (≈1e-5 at σ=1e-3, τ=0.05, K=2; see
 * evograd.ts), so give λ a scale-invariant optimiser such as Adam; `hypergradNorm` in the log shows the scale.
 */
import { InvalidArgumentError, scope, type Device } from '@metagrad/tensor';
import { leaves, type ParamTree } from '@metagrad/models';
import type { CompiledFunction } from '@metagrad/autograd';
import { CompiledSteps } from '../compiled';
import { NonFiniteGradientError, NonFiniteHypergradientError } from '../errors';
import type { OnlineStepLog, OnlineTrainerOptions } from './online-options';
import { type BaseArgs, type BaseTensors, type MetaArgs, type MetaTensors, baseTensors, eagerMetaTensors, metaTensors } from './online-steps';
import { readScalars } from './readback';

export type { InPlaceOptimizer, OnlineStepLog, OnlineTrainerOptions, UpdateOrder } from './online-options';

export class OnlineTrainer<Θ extends ParamTree = ParamTree, Λ extends ParamTree = ParamTree, B = unknown> {
  readonly log: OnlineStepLog[] = [];
  private stepCount = 0;
  private readonly device: Device;
  private readonly compiled: CompiledSteps;
  private readonly baseCompiled: CompiledFunction<BaseArgs<B>, BaseTensors> | null;
  private readonly metaCompiled: CompiledFunction<MetaArgs<B>, MetaTensors> | null = null;

  constructor(readonly options: OnlineTrainerOptions<Θ, Λ, B>) {
    if (options.order !== 'meta-first' && options.order !== 'base-first') {
      throw new InvalidArgumentError(`OnlineTrainer: order must be 'meta-first' or 'base-first', got '${String(options.order)}'`);
    }
    const every = options.metaEvery ?? 1;
    if (!Number.isInteger(every) || every < 1) throw new InvalidArgumentError(`OnlineTrainer: metaEvery must be an integer ≥ 1, got ${every}`);
    this.device = options.device ?? leaves(options.theta)[0].device;
    this.compiled = new CompiledSteps(options.compile ?? true, this.device);
    this.baseCompiled = this.compiled.add((...args: BaseArgs<B>) => baseTensors(options, ...args));
    if (options.estimator?.estimateTensors) this.metaCompiled = this.compiled.add((...args: MetaArgs<B>) => metaTensors(options, ...args));
  }

  /** Why this trainer fell back to eager steps (a TraceError's message), or null. */
  get compileFallback(): string | null {
    return this.compiled.fallback;
  }

  /** Frees the compiled steps' plans (their arenas); the trainer keeps working, eagerly. */
  dispose(): void {
    this.compiled.dispose();
  }

  get step(): number {
    return this.stepCount;
  }

  /** One base step on `trainBatch` plus (every `metaEvery` steps) one meta step judged on `valBatch`. */
  async trainStep(trainBatch: B, valBatch: B, trainBatches?: readonly B[]): Promise<OnlineStepLog> {
    const o = this.options;
    const t0 = performance.now();
    this.device.resetPeak();
    const doMeta = o.estimator !== null && this.stepCount % (o.metaEvery ?? 1) === 0;
    let meta = { valLoss: NaN, hypergradNorm: NaN, ms: NaN, peakBytes: NaN };
    if (doMeta && o.order === 'meta-first') meta = await this.metaStep(trainBatch, valBatch, trainBatches);
    const base = await this.baseStep(trainBatch);
    if (doMeta && o.order === 'base-first') meta = await this.metaStep(trainBatch, valBatch, trainBatches);
    const entry: OnlineStepLog = {
      step: this.stepCount++,
      trainLoss: base.trainLoss,
      valLoss: meta.valLoss,
      hypergradNorm: meta.hypergradNorm,
      gradNorm: base.gradNorm,
      peakBytes: this.device.memory().peakBytesInUse,
      metaPeakBytes: meta.peakBytes,
      ms: performance.now() - t0,
      metaMs: meta.ms,
    };
    this.log.push(entry);
    return entry;
  }

  private innerLr(): number | undefined {
    const lr = this.options.innerLr;
    return typeof lr === 'function' ? lr(this.stepCount) : lr;
  }

  /** dL_V/dλ, read with L_V and checked before λ's update; the step's tensors go with its scope. */
  private metaStep(trainBatch: B, valBatch: B, trainBatches?: readonly B[]) {
    const o = this.options;
    const t0 = performance.now();
    const before = this.device.memory().bytesInUse;
    this.device.resetPeak();
    const args: MetaArgs<B> = [leaves(o.theta), leaves(o.lambda), trainBatch, valBatch, trainBatches, this.innerLr()];
    return scope(async () => {
      const out = o.estimator!.estimateTensors
        ? await this.compiled.run(this.metaCompiled, (...a: MetaArgs<B>) => metaTensors(o, ...a), ...args)
        : await eagerMetaTensors(o, this.device, ...args);
      const peakBytes = this.device.memory().peakBytesInUse - before;
      // Read before the update, so a NaN/Inf hypergradient is an error that leaves λ as it was instead of silently
      // turning λ (and every later step) into NaN.
      const [valLoss, hypergradNorm] = await readScalars([out.valLoss, out.hypergradNorm]);
      if (!Number.isFinite(hypergradNorm)) {
        throw new NonFiniteHypergradientError(
          o.estimator!.name,
          `‖dL_V/dλ‖ = ${hypergradNorm} at step ${this.stepCount} (validation loss ${valLoss}); λ was not updated`,
        );
      }
      o.lambdaOptimizer.step(out.hypergrad);
      return { valLoss, hypergradNorm, ms: performance.now() - t0, peakBytes };
    });
  }

  /** ∇θL_T, read with L_T and checked before θ's update; the step's tensors go with its scope. */
  private baseStep(trainBatch: B) {
    const o = this.options;
    return scope(async () => {
      const out = await this.compiled.run(this.baseCompiled, (...a: BaseArgs<B>) => baseTensors(o, ...a), leaves(o.theta), leaves(o.lambda), trainBatch);
      // Loss and gradient norm in one readback, before the update, so that a NaN/Inf step is an error that leaves
      // θ as it was instead of silently making it NaN.
      const [trainLoss, gradNorm] = await readScalars([out.loss, out.gradNorm]);
      if (!Number.isFinite(trainLoss) || !Number.isFinite(gradNorm)) {
        throw new NonFiniteGradientError('OnlineTrainer base step', this.stepCount, trainLoss, gradNorm);
      }
      o.thetaOptimizer.step(out.grads);
      return { trainLoss, gradNorm };
    });
  }
}
