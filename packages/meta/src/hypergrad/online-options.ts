/** @file OnlineTrainer's options and its per-step log. */
import type { Device } from '@metagrad/tensor';
import type { ParamTree } from '@metagrad/models';
import type { BilevelProblem, HypergradEstimator } from './types';

/**
 * Anything that updates parameter leaves in place from a gradient tree (@metagrad/models' `SGD`, `Adam`). Its state
 * must exist before the first step (SGD and Adam allocate it in their constructors): the trainer steps it inside a
 * scope, which would free state made there unless the optimiser `keep()`s it.
 */
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
