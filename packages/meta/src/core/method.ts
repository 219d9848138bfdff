/** @file HyperMethod: how a hypergradient method plugs into an episodic inner optimisation, and the cores a trainer compiles. */
/*
 * How a hypergradient method plugs into an episodic inner optimisation (`HyperMethod`): what it is told
 * before, during and after the inner steps, and the readback-free cores a trainer can compile.
 */
import type { Tensor } from '@metagrad/tensor';
import type { ParamTree } from '@metagrad/models';
import type { BilevelProblem, HypergradResult, HypergradStats, HypergradTensors } from '../hypergrad/types';
import type { InnerOptimiser, InnerStep } from './inner';
import type { TrajectoryInput } from './trajectory';

/** One inner optimisation (an episode of a meta-batch of tasks). */
export interface EpisodeContext<Batch> {
  /** 1-based index of the inner optimisation. */
  m: number;
  problem: BilevelProblem<ParamTree, ParamTree, Batch>;
  /** λ now (updated in place between steps by online methods). */
  lambda: ParamTree;
  w0: ParamTree;
  trainBatches: readonly Batch[];
  valBatch: Batch;
  optimiser: InnerOptimiser;
  /** A diagnostic replay: methods must not refit or otherwise learn from it. */
  diagnostic?: boolean;
}

/**
 * A method's hooks. Tensors a hook makes and does not return are freed by the caller's scope; a method that keeps
 * tensors across calls (a window, a running average) `keep()`s them and frees them itself.
 */
export interface HyperMethod<Batch> {
  readonly name: string;
  /** Before the inner optimisation (HyperDistill: LinearEstimation at the scheduled m, then reset). */
  begin?(ctx: EpisodeContext<Batch>): Promise<void>;
  /** After inner step t: a hypergradient to apply now, or null. */
  step?(ctx: EpisodeContext<Batch>, step: InnerStep<Batch>): Promise<HypergradResult | null>;
  /** After the last step: a hypergradient to apply, or null. */
  end?(ctx: EpisodeContext<Batch>, wT: ParamTree): Promise<HypergradResult | null>;
  /** JVPs spent in `begin` during the last episode (LinearEstimation), reported separately from the online ones. */
  beginJvps?: number;
  /** Learned internals worth logging (HyperDistill: its θ). */
  describe?(): Record<string, number>;
  dispose?(): void;
  /** The readback-free form of `step` (FO, HyperDistill): EpisodicTrainer compiles it with the inner step. */
  online?: OnlineStepCore<Batch>;
  /** The readback-free form of `end` (DrMAD): EpisodicTrainer compiles it with the whole inner optimisation. */
  offline?: OfflineCore<Batch>;
}

/** What a compiled inner step hands an online core: the trainer's λ, the episode's D_V, w_{t−1} → w_t on D_t. */
export interface OnlineCoreInput<Batch> {
  problem: BilevelProblem<ParamTree, ParamTree, Batch>;
  lambda: ParamTree;
  valBatch: Batch;
  innerLr: number;
  wPrev: ParamTree;
  w: ParamTree;
  batch: Batch;
}

/**
 * An online method's `step` in two parts, so that the inner step and its hypergradient compile into one replay
 * while the finite check and λ's update stay outside it (EpisodicTrainer with `compile`).
 */
export interface OnlineStepCore<Batch, Args = unknown> {
  /** Work per update (the trainer adds up jvps and hvps). */
  readonly stats: HypergradStats;
  /**
   * Host work before inner step t, outside the compiled call (HyperDistill: the running w*, D* and the step's
   * scale as a tensor): the step's extra arguments (tensors, batches, trees of them). It runs in the step's scope,
   * so what it makes for this step only is freed after it (`owned` is accepted and needs no freeing by anyone).
   */
  prepare?(ctx: EpisodeContext<Batch>, t: number, wPrev: ParamTree, batch: Batch): { args: Args; owned?: Tensor[] };
  /**
   * The hypergradient after the step and L_V where it was evaluated: no readback and no host value that changes
   * from step to step (those come from `prepare` as tensors).
   */
  tensors(input: OnlineCoreInput<Batch>, args: Args): { hypergrad: ParamTree; loss: Tensor };
  /** Forgets what `prepare` keeps across steps when the inner optimisation ends early (an error). */
  release?(): void;
}

/** An offline method's `end` without a readback: the hypergradient from the finished inner optimisation. */
export interface OfflineCore<Batch> {
  tensors(input: TrajectoryInput<Batch>): HypergradTensors;
}

/** The TrajectoryInput of a finished inner optimisation w_0 → w_T on D_1 … D_T. */
export function trajectoryInput<Batch>(
  ctx: EpisodeContext<Batch>,
  w0: ParamTree,
  wT: ParamTree,
  trainBatches: readonly Batch[],
  valBatch: Batch,
): TrajectoryInput<Batch> {
  return {
    problem: ctx.problem,
    theta: wT,
    initial: w0,
    lambda: ctx.lambda,
    trainBatch: trainBatches[trainBatches.length - 1],
    trainBatches,
    valBatch,
    innerLr: ctx.optimiser.lr,
    momentum: ctx.optimiser.momentum,
  };
}
