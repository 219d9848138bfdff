/** @file What EpisodicTrainer takes (options, one episode's data) and what it records per inner optimisation. */
import type { ParamTree } from '@metagrad/models';
import type { BilevelProblem } from '../hypergrad/types';
import type { HyperMethod, InnerOptimiser } from '../core';

/** A meta-batch's data for one inner optimisation. */
export interface Episode<Batch> {
  /** D_1 … D_T. */
  trainBatches: readonly Batch[];
  valBatch: Batch;
  dispose(): void;
}

export interface EpisodicOptions<Batch> {
  problem: BilevelProblem<ParamTree, ParamTree, Batch>;
  /** λ: updated in place by Adam (the caller keeps ownership). */
  lambda: ParamTree;
  /** φ: the initial initialisation (copied; `phi` holds the current one). */
  phi: ParamTree;
  /** w_0 for the episode's tasks from φ (e.g. φ repeated along a task dimension); a new tree. */
  initialWeights(phi: ParamTree): ParamTree;
  /** The Reptile target shaped like φ from w_T (e.g. the mean over tasks); a new tree. */
  reptileTarget(wT: ParamTree): ParamTree;
  optimiser: InnerOptimiser;
  /** Adam learning rate for λ (the paper: 1e-3). */
  hyperLr: number;
  /** Reptile step η_R (the paper: 1). */
  reptileLr: number;
  method: HyperMethod<Batch>;
  /**
   * Record the mean ‖hypergradient‖ per inner optimisation (default false). The norm is read for the finite check
   * anyway (with the estimator's loss, or on its own for the implicit methods), so this costs nothing more.
   */
  logHypergradNorm?: boolean;
  /**
   * Replay the inner steps with their hypergradients as compiled functions (default true; see trainer.ts and
   * `compile` in @metagrad/autograd). A TraceError switches the trainer to eager episodes, with the reason in
   * `compileFallback`.
   */
  compile?: boolean;
}

export interface EpisodeRecord {
  m: number;
  /** L_V(w_T, λ) after the inner optimisation (λ as updated during it). */
  valLoss: number;
  /** Hypergradient updates applied to λ. */
  updates: number;
  jvps: number;
  hvps: number;
  /** JVPs of the method's `begin` (LinearEstimation), when it ran. */
  fitJvps: number;
  /** Wall time of the inner optimisation with its hypergradients (and any fit), ms. */
  ms: number;
  /** Peak bytes in use during it. */
  peakBytes: number;
  /** Mean ‖hypergradient‖ over the updates (only with `logHypergradNorm`). */
  hypergradNorm?: number;
}
