/** @file FO, offline (DrMAD) and implicit (IFT) estimators as episodic methods: when each runs and what it is given. */
/*
 * Hypergradient methods as plugged into an episodic inner optimisation: when each estimator runs (every step,
 * the last K steps, once at the end) and what it is given (w_t, the whole trajectory). HyperDistill's adapter is
 * `hyperDistillMethod` in ../hyperdistill.
 */
import { tidy, type Tensor } from '@metagrad/tensor';
import { tree, type ParamTree } from '@metagrad/models';
import { emptyStats, type BilevelProblem, type HypergradEstimator, type HypergradResult, type HypergradTensors } from '../hypergrad/types';
import { checkPositiveInt, gradLeaves, gradTree } from '../hypergrad/common';
import { checkedEstimate, trajectoryInput, type HyperMethod, type TrajectoryInput } from '../core';

/** g^FO = ∂L_V(w, λ)/∂λ with w held constant, and L_V. */
function directTerm<Batch>(
  problem: BilevelProblem<ParamTree, ParamTree, Batch>,
  w: ParamTree,
  lambda: ParamTree,
  valBatch: Batch,
): { hypergrad: ParamTree; loss: Tensor } {
  return tidy(() => {
    const lam = gradLeaves(lambda);
    const loss = problem.valLoss(tree.detach(w), lam, valBatch);
    return { hypergrad: gradTree(loss, lam), loss };
  });
}

/**
 * FO: ∂L_V(w_t, λ)/∂λ after every step (what the shared FirstOrder estimator computes; its norm is read with the
 * loss here, so a NaN/Inf one is refused without a second readback).
 */
export function firstOrderMethod<Batch>(name = 'FO'): HyperMethod<Batch> {
  const stats = { ...emptyStats(), gradients: 1, forwards: 1 };
  return {
    name,
    online: { stats, tensors: (input) => directTerm(input.problem, input.w, input.lambda, input.valBatch) },
    step: async (ctx, s) => {
      const t0 = performance.now();
      return checkedEstimate('first-order', t0, () => {
        const { hypergrad, loss } = directTerm(ctx.problem, s.w, ctx.lambda, ctx.valBatch);
        return { hypergrad, valLoss: loss, stats };
      });
    },
  };
}

/** An offline trajectory estimator (DrMAD) run once per inner optimisation. */
export function offlineMethod<Batch>(
  est: {
    estimate(input: TrajectoryInput<Batch>): Promise<HypergradResult>;
    estimateTensors?(input: TrajectoryInput<Batch>): HypergradTensors;
  },
  name: string,
): HyperMethod<Batch> {
  return {
    name,
    end: (ctx, wT) => est.estimate(trajectoryInput(ctx, ctx.w0, wT, ctx.trainBatches, ctx.valBatch)),
    ...(est.estimateTensors ? { offline: { tensors: (input: TrajectoryInput<Batch>) => est.estimateTensors!(input) } } : {}),
  };
}

/** An implicit (IFT) estimator online over the last `lastSteps` inner steps only, at w_t (the paper's N.IFT(N, K)). */
export function implicitMethod<Batch>(est: HypergradEstimator<Batch>, lastSteps: number, name: string): HyperMethod<Batch> {
  checkPositiveInt('implicitMethod', 'lastSteps', lastSteps);
  return {
    name,
    step: async (ctx, s) =>
      s.t > s.T - lastSteps
        ? est.estimate({
            problem: ctx.problem,
            theta: s.w,
            lambda: ctx.lambda,
            trainBatch: s.batch,
            valBatch: ctx.valBatch,
            innerLr: ctx.optimiser.lr,
          })
        : null,
  };
}
