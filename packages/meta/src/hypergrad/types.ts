/**
 * @file The bilevel problem and the hypergradient-estimator interface shared by every online estimator.
 *
 * Types: Θ is the base parameters' tree type, Λ the hyperparameters', B the batch type. A problem written for
 * `BilevelProblem<MlpParams, Tensor, Batch>` gets `theta: MlpParams` and `lambda: Tensor` in its losses, and an
 * estimator's result has `hypergrad: Λ`: no casts. Estimators are generic per call (`estimate<Θ, Λ>(…)`), so one
 * estimator instance serves any problem; the class's own type parameter is the batch type only.
 */
import type { Tensor } from '@metagrad/tensor';
import type { ParamTree } from '@metagrad/models';

/**
 * min_λ L_V(θ*(λ), λ) s.t. θ*(λ) ≈ argmin_θ L_T(θ, λ). Both losses return a scalar tensor built with the
 * differentiable ops of @metagrad/autograd, so estimators can differentiate them once or twice.
 */
export interface BilevelProblem<Θ extends ParamTree = ParamTree, Λ extends ParamTree = ParamTree, B = unknown> {
  trainLoss(theta: Θ, lambda: Λ, batch: B): Tensor;
  valLoss(theta: Θ, lambda: Λ, batch: B): Tensor;
  /**
   * Optional: the training losses of K parameter copies in one batched forward. `thetas` has θ's structure with
   * every leaf stacked along a new leading dimension of size K (constants: no graph to θ); returns a [K] tensor
   * whose k-th entry equals trainLoss(θ_k, λ, batch). EvoGrad uses it so its cost grows little with K, and falls
   * back to K separate trainLoss calls without it.
   */
  batchedTrainLoss?(thetas: Θ, lambda: Λ, batch: B): Tensor;
}

/**
 * Everything an estimator may look at for one meta-step. It must not dispose or mutate these tensors. Only what
 * the estimator's maths uses is required of it: an estimator that needs an absent field throws
 * InvalidArgumentError naming it (FirstOrder reads neither `trainBatch` nor `innerLr`; UnrolledRMD is content
 * with `trainBatches`; EvoGrad and CG ignore `innerLr`).
 */
export interface HypergradInput<Θ extends ParamTree = ParamTree, Λ extends ParamTree = ParamTree, B = unknown> {
  problem: BilevelProblem<Θ, Λ, B>;
  /** Current base parameters θ. */
  theta: Θ;
  /** Current hyperparameters λ. */
  lambda: Λ;
  /** The training batch (T1–T2, EvoGrad, the implicit methods; UnrolledRMD when `trainBatches` is absent). */
  trainBatch?: B;
  valBatch: B;
  /** Step size α of the inner SGD step that T1–T2 assumes (UnrolledRMD without an optimiser, Neumann without alpha). */
  innerLr?: number;
  /** Further training batches, for estimators that unroll several inner steps (one per step). */
  trainBatches?: readonly B[];
  /**
   * Also return the estimator's intermediates, named as in its paper (T1–T2 `thetaPrime`; EvoGrad `losses`,
   * `weights`, `thetaStar`; UnrolledRMD `trajectory`; Neumann `series` and `solution`; CG `solution`). They are
   * detached tensors owned by the caller; without this flag they are neither kept nor returned. Default false.
   */
  intermediates?: boolean;
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

export interface HypergradResult<Λ extends ParamTree = ParamTree> {
  /** dL_V/dλ, direct plus indirect term, with λ's tree structure; owned by the caller (dispose it). */
  hypergrad: Λ;
  /** L_V at the point the estimator evaluated it (θ', θ*, θ_T …), for logging. */
  valLoss: number;
  stats: HypergradStats;
}

/** An estimate as tensors, before any readback: what a compiled step computes and returns. */
export interface HypergradTensors<Λ extends ParamTree = ParamTree> {
  /** dL_V/dλ with λ's tree structure; owned by the caller. */
  hypergrad: Λ;
  /** L_V at the point the estimator evaluated it, a one-element tensor owned by the caller. */
  valLoss: Tensor;
  stats: HypergradStats;
}

/**
 * The interface the trainers take. B is the batch type; Θ and Λ default to any tree, and the built-in estimators'
 * methods are generic, so `new OneStepLookahead()` is a `HypergradEstimator<B, Θ, Λ>` for every Θ, Λ and B.
 */
export interface HypergradEstimator<B = unknown, Θ extends ParamTree = ParamTree, Λ extends ParamTree = ParamTree> {
  readonly name: string;
  estimate(input: HypergradInput<Θ, Λ, B>): Promise<HypergradResult<Λ>>;
  /**
   * The same estimate, synchronous and without reading anything back (so `compile` can capture it); `stats.ms` is
   * 0. Built-in estimators with a fixed amount of work have it; those that branch on GPU values (CG's tolerance,
   * Neumann's divergence check) do not.
   */
  estimateTensors?(input: HypergradInput<Θ, Λ, B>): HypergradTensors<Λ>;
}

/** T1–T2's intermediate: θ′ = θ − α∇θL_T(θ, λ), the look-ahead point L_V is evaluated at. */
export interface LookaheadIntermediates<Θ extends ParamTree> {
  thetaPrime: Θ;
}

/** EvoGrad's intermediates: ℓ_k = L_T(θ + ε_k, λ) [K], w = softmax(−ℓ/τ) [K], θ* = θ + Σ_k w_k ε_k. */
export interface EvoGradIntermediates<Θ extends ParamTree> {
  losses: Tensor;
  weights: Tensor;
  thetaStar: Θ;
}

/** UnrolledRMD's intermediate: the inner iterates θ_1 … θ_T (θ_0 is the input θ; L_V is evaluated at θ_T). */
export interface UnrolledIntermediates<Θ extends ParamTree> {
  trajectory: Θ[];
}

/**
 * The implicit estimators' intermediates: `solution` x ≈ H⁻¹∇θL_V (what multiplies the mixed second derivative);
 * Neumann also returns `series`, Lorraine et al.'s p after each term: p_j = Σ_{i≤j} (I − αH)^i ∇θL_V, j = 0 … N
 * (so x = α p_N).
 */
export interface ImplicitIntermediates<Θ extends ParamTree> {
  solution: Θ;
  series?: Θ[];
}

/** A result with an estimator's (optional) intermediates. */
export type HypergradWith<R, I> = R & Partial<I>;

export const emptyStats = (): HypergradStats => ({ gradients: 0, hvps: 0, jvps: 0, forwards: 0, ms: 0 });
