/**
 * @file Online bilevel training: alternating base steps on θ (exact ∇θL_T) and meta steps on λ (any
 * HypergradEstimator), in either order — meta-first as Meta-Weight-Net, base-first as the EvoGrad rotation
 * experiment — with separate in-place optimisers for θ and λ and a per-step log of losses, hypergradient norms,
 * peak memory and time.
 *
 * EvoGrad's hypergradient is ~σ²(K−1)/(Kτ) times the T1–T2 direction (≈1e-5 at σ=1e-3, τ=0.05, K=2; see
 * evograd.ts), so give λ a scale-invariant optimiser such as Adam; `hypergradNorm` in the log shows the scale.
 */
import { InvalidArgumentError, type Device, type Tensor } from '@metagrad/tensor';
import { noGrad } from '@metagrad/autograd';
import { detachTree, disposeTree, leaves, normTree, type ParamTree } from '@metagrad/models';
import type { BilevelProblem, HypergradEstimator } from './types';
import { gradLeaves, gradTree } from './common';
import { readWithNorm } from './readback';
import { NonFiniteGradientError, NonFiniteHypergradientError } from '../errors';

/** Anything that updates parameter leaves in place from a gradient tree (@metagrad/models' `SGD`, `Adam`). */
export interface InPlaceOptimizer {
  step(grads: ParamTree): void;
}

export type UpdateOrder = 'meta-first' | 'base-first';

export interface OnlineTrainerOptions<Batch> {
  problem: BilevelProblem<Batch>;
  /** null: plain training (base steps only, λ fixed), the baseline run through the same loop and logging. */
  estimator: HypergradEstimator<Batch> | null;
  /** θ and λ are updated in place by the optimisers, which must have been built on these same trees. */
  theta: ParamTree;
  lambda: ParamTree;
  thetaOptimizer: InPlaceOptimizer;
  lambdaOptimizer: InPlaceOptimizer;
  /** 'meta-first': estimate at θ_t, update λ, then θ with the new λ (MWN). 'base-first': update θ, then λ at θ_{t+1}. */
  order: UpdateOrder;
  /** α the estimators assume for their inner step (usually the base learning rate); a number or a schedule. */
  innerLr: number | ((step: number) => number);
  /** Run a meta step every `metaEvery` base steps (default 1). */
  metaEvery?: number;
  /** Device whose peak memory is logged (default: θ's first leaf's). */
  device?: Device;
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

export class OnlineTrainer<Batch> {
  readonly log: OnlineStepLog[] = [];
  private stepCount = 0;
  private readonly device: Device;

  constructor(readonly options: OnlineTrainerOptions<Batch>) {
    if (options.order !== 'meta-first' && options.order !== 'base-first') {
      throw new InvalidArgumentError(`OnlineTrainer: order must be 'meta-first' or 'base-first', got '${String(options.order)}'`);
    }
    const every = options.metaEvery ?? 1;
    if (!Number.isInteger(every) || every < 1) throw new InvalidArgumentError(`OnlineTrainer: metaEvery must be an integer ≥ 1, got ${every}`);
    this.device = options.device ?? leaves(options.theta)[0].device;
  }

  get step(): number {
    return this.stepCount;
  }

  /** One base step on `trainBatch` plus (every `metaEvery` steps) one meta step judged on `valBatch`. */
  async trainStep(trainBatch: Batch, valBatch: Batch, trainBatches?: readonly Batch[]): Promise<OnlineStepLog> {
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

  private innerLr(): number {
    const lr = this.options.innerLr;
    return typeof lr === 'number' ? lr : lr(this.stepCount);
  }

  private async metaStep(trainBatch: Batch, valBatch: Batch, trainBatches?: readonly Batch[]) {
    const o = this.options;
    const t0 = performance.now();
    const before = this.device.memory().bytesInUse;
    this.device.resetPeak();
    const result = await o.estimator!.estimate({ problem: o.problem, theta: o.theta, lambda: o.lambda, trainBatch, valBatch, innerLr: this.innerLr(), trainBatches });
    const peakBytes = this.device.memory().peakBytesInUse - before;
    try {
      // The norm is read back for the log anyway: reading it before the update makes a NaN/Inf hypergradient an
      // error that leaves λ as it was, instead of silently turning λ (and every later step) into NaN.
      const hypergradNorm = await deviceNorm(result.hypergrad);
      if (!Number.isFinite(hypergradNorm)) {
        throw new NonFiniteHypergradientError(
          o.estimator!.name,
          `‖dL_V/dλ‖ = ${hypergradNorm} at step ${this.stepCount} (validation loss ${result.valLoss}); λ was not updated`,
        );
      }
      o.lambdaOptimizer.step(result.hypergrad);
      return { valLoss: result.valLoss, hypergradNorm, ms: performance.now() - t0, peakBytes };
    } finally {
      disposeTree(result.hypergrad);
    }
  }

  private async baseStep(trainBatch: Batch) {
    const o = this.options;
    const theta = gradLeaves(o.theta);
    const lambda = detachTree(o.lambda);
    let loss: Tensor | undefined;
    let grads: ParamTree | undefined;
    try {
      loss = o.problem.trainLoss(theta, lambda, trainBatch);
      grads = gradTree(loss, theta);
      // Loss and gradient norm in one readback (they were two), before the update, so that a NaN/Inf step is an
      // error that leaves θ as it was instead of silently making it NaN.
      const [trainLoss, gradNorm] = await readWithNorm(loss, grads);
      if (!Number.isFinite(trainLoss) || !Number.isFinite(gradNorm)) {
        throw new NonFiniteGradientError('OnlineTrainer base step', this.stepCount, trainLoss, gradNorm);
      }
      o.thetaOptimizer.step(grads);
      return { trainLoss, gradNorm };
    } finally {
      loss?.dispose();
      if (grads) disposeTree(grads);
      disposeTree(theta);
      disposeTree(lambda);
    }
  }
}

/** ‖tree‖ reduced on the device: one scalar read back whatever the model size (keeps the timing honest). */
async function deviceNorm(tree: ParamTree): Promise<number> {
  const n = noGrad(() => normTree(tree));
  try {
    return await n.item();
  } finally {
    n.dispose();
  }
}
