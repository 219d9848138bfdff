/**
 * @file Hypergradient methods as plugged into an episodic inner optimisation: when each estimator runs (every step,
 * the last K steps, once at the end) and what it is given (w_{t−1} or w_t, the whole trajectory).
 */
import { tidy, type Tensor } from '@metagrad/tensor';
import { detachTree, type ParamTree } from '@metagrad/models';
import { emptyStats, type BilevelProblem, type HypergradEstimator, type HypergradResult, type HypergradStats, type HypergradTensors } from '../hypergrad/types';
import { checkPositiveInt, gradLeaves, gradTree } from '../hypergrad/common';
import { finishCheckedResult } from './checked';
import type { InnerOptimiser, InnerStep } from './inner';
import type { TrajectoryInput } from './trajectory';
import { HyperDistill, type HyperDistillStepArgs } from '../hyperdistill/hyperdistill';

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
   * scale as a tensor): the step's extra arguments (tensors, batches, trees of them) and the tensors the trainer
   * frees after the step. Absent: no extra arguments.
   */
  prepare?(ctx: EpisodeContext<Batch>, t: number, wPrev: ParamTree, batch: Batch): { args: Args; owned: Tensor[] };
  /**
   * The hypergradient after the step and L_V where it was evaluated, owned by the caller: no readback and no host
   * value that changes from step to step (those come from `prepare` as tensors).
   */
  tensors(input: OnlineCoreInput<Batch>, args: Args): { hypergrad: ParamTree; loss: Tensor };
  /** Frees what `prepare` keeps across steps when the inner optimisation ends early (an error). */
  release?(): void;
}

/** An offline method's `end` without a readback: the hypergradient from the finished inner optimisation. */
export interface OfflineCore<Batch> {
  tensors(input: TrajectoryInput<Batch>): HypergradTensors;
}

/**
 * FO: ∂L_V(w_t, λ)/∂λ after every step (what the shared FirstOrder estimator computes; its norm is read with the
 * loss here, so a NaN/Inf one is refused without a second readback).
 */
export function firstOrderMethod<Batch>(name = 'FO'): HyperMethod<Batch> {
  return {
    name,
    online: {
      stats: { ...emptyStats(), gradients: 1, forwards: 1 },
      tensors: (input) =>
        tidy(() => {
          const lambda = gradLeaves(input.lambda);
          const loss = input.problem.valLoss(detachTree(input.w), lambda, input.valBatch);
          return { hypergrad: gradTree(loss, lambda), loss };
        }),
    },
    step: async (ctx, s) => {
      const t0 = performance.now();
      const out = tidy(() => {
        const lambda = gradLeaves(ctx.lambda);
        const loss = ctx.problem.valLoss(detachTree(s.w), lambda, ctx.valBatch);
        return { hypergrad: gradTree(loss, lambda), loss };
      });
      return finishCheckedResult('first-order', out.hypergrad, out.loss, { ...emptyStats(), gradients: 1, forwards: 1 }, t0);
    },
  };
}

/** HyperDistill online (γ = 0 with θ = 1 fixed is the one-step look-ahead through the momentum step). */
export function hyperDistillMethod<Batch>(hd: HyperDistill<Batch>, name = hd.name): HyperMethod<Batch> {
  const method: HyperMethod<Batch> = {
    name,
    beginJvps: 0,
    async begin(ctx) {
      method.beginJvps = 0;
      if (!ctx.diagnostic && hd.shouldEstimate(ctx.m)) {
        const fit = await hd.fit({ problem: ctx.problem, lambda: ctx.lambda, initial: ctx.w0, trainBatches: ctx.trainBatches, valBatch: ctx.valBatch, optimiser: ctx.optimiser });
        method.beginJvps = fit.jvps;
      }
      hd.reset();
    },
    async step(ctx, s) {
      try {
        return await hd.estimate({ problem: ctx.problem, theta: s.wPrev, next: s.w, lambda: ctx.lambda, trainBatch: s.batch, valBatch: ctx.valBatch, innerLr: ctx.optimiser.lr });
      } catch (error) {
        // The inner optimisation ends here: free the running w*, D* now rather than at the next begin.
        hd.reset();
        throw error;
      }
    },
    end: async () => {
      hd.reset();
      return null;
    },
    describe: () => ({ theta: hd.theta }),
    dispose: () => hd.dispose(),
    online: {
      stats: HyperDistill.onlineStats,
      prepare: (_ctx, _t, wPrev, batch) => {
        const args = hd.onlineArgs(wPrev, batch);
        return { args, owned: [args.scale] };
      },
      tensors: (input, args) => hd.onlineTensors(input, input.w, args as HyperDistillStepArgs<Batch>),
      release: () => hd.reset(),
    },
  };
  return method;
}

/** An offline trajectory estimator (DrMAD) run once per inner optimisation. */
export function offlineMethod<Batch>(
  est: { estimate(input: TrajectoryInput<Batch>): Promise<HypergradResult>; estimateTensors?(input: TrajectoryInput<Batch>): HypergradTensors },
  name: string,
): HyperMethod<Batch> {
  return {
    name,
    end: (ctx, wT) => est.estimate(trajectoryInput(ctx, ctx.w0, wT, ctx.trainBatches, ctx.valBatch)),
    ...(est.estimateTensors ? { offline: { tensors: (input: TrajectoryInput<Batch>) => est.estimateTensors!(input) } } : {}),
  };
}

/** The TrajectoryInput of a finished inner optimisation w_0 → w_T on D_1 … D_T. */
export function trajectoryInput<Batch>(ctx: EpisodeContext<Batch>, w0: ParamTree, wT: ParamTree, trainBatches: readonly Batch[], valBatch: Batch): TrajectoryInput<Batch> {
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

/** An implicit (IFT) estimator online over the last `lastSteps` inner steps only, at w_t (the paper's N.IFT(N, K)). */
export function implicitMethod<Batch>(est: HypergradEstimator<Batch>, lastSteps: number, name: string): HyperMethod<Batch> {
  checkPositiveInt('implicitMethod', 'lastSteps', lastSteps);
  return {
    name,
    step: async (ctx, s) =>
      s.t > s.T - lastSteps
        ? est.estimate({ problem: ctx.problem, theta: s.w, lambda: ctx.lambda, trainBatch: s.batch, valBatch: ctx.valBatch, innerLr: ctx.optimiser.lr })
        : null,
  };
}
