/** @file The meta-learner interface shared by MAML, FOMAML, Reptile, iMAML and Adjoint-MAML: per task, support/query data → meta-gradient w.r.t. the initialisation. */
import type { Tensor } from '@metagrad/tensor';
import type { ParamTree } from '@metagrad/models';

/**
 * What a meta-learner needs to know about a task family: the inner (support) loss it adapts on and the outer
 * (query) loss J it differentiates. Both return a single-element tensor built from differentiable ops, so
 * gradients of any order reach the parameters. `D` is whatever one task carries (tensors on the device).
 */
export interface MetaProblem<P extends ParamTree, D> {
  innerLoss(params: P, task: D): Tensor;
  outerLoss(params: P, task: D): Tensor;
}

/** Supervised data of one split, on the device: x [N, in], y [N, out]. */
export interface SupervisedData {
  x: Tensor;
  y: Tensor;
}

/** The usual few-shot task: adapt on `support`, evaluate J on `query`. */
export interface SupportQueryTask {
  support: SupervisedData;
  query: SupervisedData;
}

/** Counters of one meta-gradient: what it cost, in the units the methods share. */
export interface MetaGradientStats {
  /** Gradients of the inner loss (forward-solve right-hand sides count one each). */
  innerGradients: number;
  /** Hessian-vector products (iMAML's CG, the adjoint sweep). */
  hvps: number;
  /** Gradient-descent steps taken, or tracked grid intervals for Adjoint-MAML. */
  innerSteps: number;
  /** Adjoint-MAML: tracked states whose backward Heun step was replayed from a compiled plan (absent elsewhere). */
  replayedStates?: number;
}

export interface MetaGradient<P extends ParamTree> {
  /** dJ/dθ (or the method's surrogate: Reptile's θ − u_T), shaped like θ, owned by the caller, no graph. */
  gradient: P;
  /** J at the adapted parameters (read back, for logging). */
  outerLoss: number;
  stats: MetaGradientStats;
}

/** A meta-gradient as tensors, before any readback: what a compiled meta-step computes and returns. */
export interface MetaGradientTensors<P extends ParamTree> {
  gradient: P;
  /** J at the adapted parameters, a one-element tensor owned by the caller. */
  outerLoss: Tensor;
  stats: MetaGradientStats;
}

/** Options of one meta-gradient. */
export interface MetaGradientOptions {
  /**
   * Also return the inner loop's intermediates (`adapted` φ_T and `innerLosses`), default false: opt-in because φ_T
   * is then the caller's to dispose. Off, nothing extra is kept; on, they cost no extra dispatch (φ_T and the losses
   * are detached views of what the inner loop computed anyway, gathered by buffer copies) and `metaGradient` reads J
   * and the losses in its one readback.
   */
  intermediates?: boolean;
}

/** The inner loop's intermediates, as read back by `metaGradient(…, { intermediates: true })`. */
export interface MetaIntermediates<P extends ParamTree> {
  /** φ_T, the adapted parameters (A-MAML: u(T)); owned by the caller, no graph. */
  adapted: P;
  /**
   * The support loss L(u_k) at each inner step k = 0…T−1, before the step (the loss whose gradient the step takes;
   * iMAML: without the proximal term). A-MAML: L(u(t_k)) at the n + 1 tracked states t_0 = 0 … t_n = T.
   */
  innerLosses: number[];
}

/** The same intermediates as tensors (from `metaGradientTensors`): `innerLosses` is one tensor of shape [T]. */
export interface MetaIntermediateTensors<P extends ParamTree> {
  adapted: P;
  innerLosses: Tensor;
}

/** `R`, plus the intermediates `X` when the options say `{ intermediates: true }`. */
export type WithIntermediates<R, X, O> = O extends { intermediates: true } ? R & X : R;

/** A meta-learner: one task's meta-gradient at the initialisation θ (θ is never modified or disposed). */
export interface MetaLearner {
  readonly name: string;
  metaGradient<P extends ParamTree, D, O extends MetaGradientOptions = {}>(
    problem: MetaProblem<P, D>,
    theta: P,
    task: D,
    options?: O,
  ): Promise<WithIntermediates<MetaGradient<P>, MetaIntermediates<P>, O>>;
  /**
   * The same meta-gradient, synchronous and without reading anything back, so `compile` can capture it. MAML,
   * FOMAML and Reptile have it; iMAML (CG's tolerance) and Adjoint-MAML (step-size control, finite checks) branch
   * on GPU values and do not.
   */
  metaGradientTensors?<P extends ParamTree, D, O extends MetaGradientOptions = {}>(
    problem: MetaProblem<P, D>,
    theta: P,
    task: D,
    options?: O,
  ): WithIntermediates<MetaGradientTensors<P>, MetaIntermediateTensors<P>, O>;
}

/** What a learner's implementation returns before the options narrow its type (intermediates present iff asked). */
export type MetaGradientOut<P extends ParamTree> = MetaGradient<P> & Partial<MetaIntermediates<P>>;
export type MetaGradientTensorsOut<P extends ParamTree> = MetaGradientTensors<P> & Partial<MetaIntermediateTensors<P>>;

export const newMetaStats = (): MetaGradientStats => ({ innerGradients: 0, hvps: 0, innerSteps: 0 });
