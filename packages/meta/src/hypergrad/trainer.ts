/**
 * @file Online bilevel training: alternating base steps on θ (exact ∇θL_T) and meta steps on λ (any
 * HypergradEstimator), in either order — meta-first as Meta-Weight-Net, base-first as the EvoGrad rotation
 * experiment — with separate in-place optimisers for θ and λ and a per-step log of losses, hypergradient norms,
 * peak memory and time.
 *
 * EvoGrad's hypergradient is ~σ²(K−1)/(Kτ) times the T1–T2 direction (≈1e-5 at σ=1e-3, τ=0.05, K=2; see
 * evograd.ts), so give λ a scale-invariant optimiser such as Adam; `hypergradNorm` in the log shows the scale.
 */
import { InvalidArgumentError, dispose, tensor, tidy, type Device, type Tensor } from '@metagrad/tensor';
import { compile, detach, noGrad, type CompiledFunction } from '@metagrad/autograd';
import { leaves, normTree, tree, type ParamTree } from '@metagrad/models';
import type { BilevelProblem, HypergradEstimator } from './types';
import { gradLeaves, gradTree } from './common';
import { readScalars } from './readback';
import { compiledOrEager } from '../compiled';
import { NonFiniteGradientError, NonFiniteHypergradientError } from '../errors';

/** Anything that updates parameter leaves in place from a gradient tree (@metagrad/models' `SGD`, `Adam`). */
export interface InPlaceOptimizer {
  step(grads: ParamTree): void;
}

export type UpdateOrder = 'meta-first' | 'base-first';

export interface OnlineTrainerOptions<Θ extends ParamTree = ParamTree, Λ extends ParamTree = ParamTree, B = unknown> {
  problem: BilevelProblem<Θ, Λ, B>;
  /** null: plain training (base steps only, λ fixed), the baseline run through the same loop and logging. */
  estimator: HypergradEstimator<NoInfer<B>> | null;
  /** θ and λ are updated in place by the optimisers, which must have been built on these same trees. */
  theta: Θ;
  lambda: Λ;
  thetaOptimizer: InPlaceOptimizer;
  lambdaOptimizer: InPlaceOptimizer;
  /** 'meta-first': estimate at θ_t, update λ, then θ with the new λ (MWN). 'base-first': update θ, then λ at θ_{t+1}. */
  order: UpdateOrder;
  /**
   * α the estimators assume for their inner step (usually the base learning rate); a number or a schedule. Only
   * estimators that use it need it (T1–T2, UnrolledRMD without an optimiser, Neumann without alpha, HyperDistill).
   */
  innerLr?: number | ((step: number) => number);
  /** Run a meta step every `metaEvery` base steps (default 1). */
  metaEvery?: number;
  /** Device whose peak memory is logged (default: θ's first leaf's). */
  device?: Device;
  /**
   * Replay the base and meta computations as compiled steps (default true; see `compile` in @metagrad/autograd).
   * The finite checks and the in-place updates stay outside them, so a NaN/Inf step still leaves θ and λ as they
   * were. An estimator without `estimateTensors` (Neumann, CG) runs eagerly; a TraceError from the problem (a
   * host value that changes per step) switches this trainer to eager steps, with the reason in `compileFallback`.
   */
  compile?: boolean;
}

/** What the base step computes before its check and update. */
interface BaseTensors {
  loss: Tensor;
  grads: ParamTree;
  gradNorm: Tensor;
}

/** What the meta step computes before its check and update. */
interface MetaTensors {
  hypergrad: ParamTree;
  valLoss: Tensor;
  hypergradNorm: Tensor;
}

export interface OnlineStepLog {
  step: number;
  /** L_T(θ, λ) at the base step (before its update). */
  trainLoss: number;
  /** L_V where the estimator evaluated it (NaN on steps without a meta step). */
  valLoss: number;
  /** ‖dL_V/dλ‖ as estimated (NaN without a meta step). */
  hypergradNorm: number;
  /** ‖∇θL_T‖. */
  gradNorm: number;
  /** Peak bytes in use during this step (reset at its start). */
  peakBytes: number;
  /** Peak bytes during the meta step alone (NaN without one). */
  metaPeakBytes: number;
  ms: number;
  metaMs: number;
}

export class OnlineTrainer<Θ extends ParamTree = ParamTree, Λ extends ParamTree = ParamTree, B = unknown> {
  readonly log: OnlineStepLog[] = [];
  /** Why this trainer fell back to eager steps (a TraceError's message), or null. */
  compileFallback: string | null = null;
  private stepCount = 0;
  private readonly device: Device;
  private baseCompiled: CompiledFunction<[B], BaseTensors> | null = null;
  private metaCompiled: CompiledFunction<[B, B, readonly B[] | undefined, number | undefined], MetaTensors> | null = null;

  constructor(readonly options: OnlineTrainerOptions<Θ, Λ, B>) {
    if (options.order !== 'meta-first' && options.order !== 'base-first') {
      throw new InvalidArgumentError(`OnlineTrainer: order must be 'meta-first' or 'base-first', got '${String(options.order)}'`);
    }
    const every = options.metaEvery ?? 1;
    if (!Number.isInteger(every) || every < 1) throw new InvalidArgumentError(`OnlineTrainer: metaEvery must be an integer ≥ 1, got ${every}`);
    this.device = options.device ?? leaves(options.theta)[0].device;
    if (options.compile ?? true) {
      this.baseCompiled = compile((batch: B) => this.baseTensors(batch), { device: this.device });
      const estimator = options.estimator;
      if (estimator?.estimateTensors) {
        this.metaCompiled = compile((train: B, val: B, trains: readonly B[] | undefined, innerLr: number | undefined) => this.metaTensors(train, val, trains, innerLr), { device: this.device });
      }
    }
  }

  /** Frees the compiled steps' plans (their arenas); the trainer keeps working, eagerly. */
  dispose(): void {
    this.baseCompiled?.dispose();
    this.metaCompiled?.dispose();
    this.baseCompiled = this.metaCompiled = null;
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
    let base = { trainLoss: NaN, gradNorm: NaN };
    if (doMeta && o.order === 'meta-first') meta = await this.metaStep(trainBatch, valBatch, trainBatches);
    base = await this.baseStep(trainBatch);
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

  /** ∇θL_T at (θ, λ) and what the check reads: the base step's computation, compiled or not. */
  private baseTensors(trainBatch: B): BaseTensors {
    const o = this.options;
    return tidy(() => {
      const theta = gradLeaves(o.theta);
      const loss = o.problem.trainLoss(theta, tree.detach(o.lambda), trainBatch);
      const grads = gradTree(loss, theta);
      return { loss: detach(loss), grads, gradNorm: noGrad(() => normTree(grads)) };
    });
  }

  private metaTensors(trainBatch: B, valBatch: B, trainBatches: readonly B[] | undefined, innerLr: number | undefined): MetaTensors {
    const o = this.options;
    const r = o.estimator!.estimateTensors!({ problem: o.problem, theta: o.theta, lambda: o.lambda, trainBatch, valBatch, innerLr, trainBatches });
    return { hypergrad: r.hypergrad, valLoss: r.valLoss, hypergradNorm: noGrad(() => normTree(r.hypergrad)) };
  }

  /** A TraceError from a compiled computation: eager steps from now on, and why. */
  private fallBack(reason: string): void {
    this.compileFallback = reason;
    this.dispose();
  }

  private async metaStep(trainBatch: B, valBatch: B, trainBatches?: readonly B[]) {
    const o = this.options;
    const t0 = performance.now();
    const before = this.device.memory().bytesInUse;
    this.device.resetPeak();
    const innerLr = this.innerLr();
    const out: MetaTensors = o.estimator!.estimateTensors
      ? await compiledOrEager(this.metaCompiled, (a: B, b: B, c: readonly B[] | undefined, lr: number | undefined) => this.metaTensors(a, b, c, lr), (r) => this.fallBack(r), trainBatch, valBatch, trainBatches, innerLr)
      : await this.eagerMeta(trainBatch, valBatch, trainBatches, innerLr);
    const peakBytes = this.device.memory().peakBytesInUse - before;
    try {
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
    } finally {
      dispose(out);
    }
  }

  /** An estimator that reads back (Neumann, CG): its async estimate, shaped like the compiled core's result. */
  private async eagerMeta(trainBatch: B, valBatch: B, trainBatches: readonly B[] | undefined, innerLr: number | undefined): Promise<MetaTensors> {
    const o = this.options;
    const r = await o.estimator!.estimate({ problem: o.problem, theta: o.theta, lambda: o.lambda, trainBatch, valBatch, innerLr, trainBatches });
    return { hypergrad: r.hypergrad, valLoss: tensorOf(r.valLoss, this.device), hypergradNorm: noGrad(() => normTree(r.hypergrad)) };
  }

  private async baseStep(trainBatch: B) {
    const o = this.options;
    const out = await compiledOrEager(this.baseCompiled, (b: B) => this.baseTensors(b), (r) => this.fallBack(r), trainBatch);
    try {
      // Loss and gradient norm in one readback, before the update, so that a NaN/Inf step is an error that leaves
      // θ as it was instead of silently making it NaN.
      const [trainLoss, gradNorm] = await readScalars([out.loss, out.gradNorm]);
      if (!Number.isFinite(trainLoss) || !Number.isFinite(gradNorm)) {
        throw new NonFiniteGradientError('OnlineTrainer base step', this.stepCount, trainLoss, gradNorm);
      }
      o.thetaOptimizer.step(out.grads);
      return { trainLoss, gradNorm };
    } finally {
      dispose(out);
    }
  }
}

/** A host number as a one-element tensor (the eager estimators read their loss back already). */
function tensorOf(value: number, device: Device): Tensor {
  return tensor([value], [1], 'f32', device);
}
