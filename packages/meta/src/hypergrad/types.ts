/** @file The bilevel problem and the hypergradient-estimator interface shared by every online estimator. */
import type { Tensor } from '@metagrad/tensor';
import type { ParamTree } from '@metagrad/models';

/**
 * min_λ L_V(θ*(λ), λ) s.t. θ*(λ) ≈ argmin_θ L_T(θ, λ). Both losses return a scalar tensor built with the
 * differentiable ops of @metagrad/autograd, so estimators can differentiate them once or twice.
 */
export interface BilevelProblem<Batch> {
  trainLoss(theta: ParamTree, lambda: ParamTree, batch: Batch): Tensor;
  valLoss(theta: ParamTree, lambda: ParamTree, batch: Batch): Tensor;
  /**
   * Optional: the training losses of K parameter copies in one batched forward. `thetas` has θ's structure with
   * every leaf stacked along a new leading dimension of size K (constants: no graph to θ); returns a [K] tensor
   * whose k-th entry equals trainLoss(θ_k, λ, batch). EvoGrad uses it so its cost grows little with K, and falls
   * back to K separate trainLoss calls without it.
   */
  batchedTrainLoss?(thetas: ParamTree, lambda: ParamTree, batch: Batch): Tensor;
}

/** Everything an estimator may look at for one meta-step. It must not dispose or mutate these tensors. */
export interface HypergradInput<Batch> {
  problem: BilevelProblem<Batch>;
  /** Current base parameters θ. */
  theta: ParamTree;
  /** Current hyperparameters λ. */
  lambda: ParamTree;
  trainBatch: Batch;
  valBatch: Batch;
  /** Step size α of the inner SGD step that look-ahead, EvoGrad's weighting and the implicit methods assume. */
  innerLr: number;
  /** Further training batches, for estimators that unroll several inner steps (one per step). */
  trainBatches?: readonly Batch[];
}

/** Work an estimator did, so methods can be compared by more than wall time. */
export interface HypergradStats {
  gradients: number;
  hvps: number;
  jvps: number;
  /** Forward evaluations of a loss (EvoGrad's K copies count K). */
  forwards: number;
  ms: number;
}

export interface HypergradResult {
  /** dL_V/dλ, direct plus indirect term, with λ's tree structure; owned by the caller (dispose it). */
  hypergrad: ParamTree;
  /** L_V at the point the estimator evaluated it (θ', θ*, θ_T …), for logging. */
  valLoss: number;
  stats: HypergradStats;
}

/** An estimate as tensors, before any readback: what a compiled step computes and returns. */
export interface HypergradTensors {
  /** dL_V/dλ with λ's tree structure; owned by the caller. */
  hypergrad: ParamTree;
  /** L_V at the point the estimator evaluated it, a one-element tensor owned by the caller. */
  valLoss: Tensor;
  stats: HypergradStats;
}

export interface HypergradEstimator<Batch> {
  readonly name: string;
  estimate(input: HypergradInput<Batch>): Promise<HypergradResult>;
  /**
   * The same estimate, synchronous and without reading anything back (so `compile` can capture it); `stats.ms` is
   * 0. Built-in estimators with a fixed amount of work have it; those that branch on GPU values (CG's tolerance,
   * Neumann's divergence check) do not.
   */
  estimateTensors?(input: HypergradInput<Batch>): HypergradTensors;
}

export const emptyStats = (): HypergradStats => ({ gradients: 0, hvps: 0, jvps: 0, forwards: 0, ms: 0 });
