/** @file Offline hypergradients of a finished inner optimisation w_0 → w_T: the shared input and g = ∂_λL_V(w_T) + g^SO. */
/*
 * Offline hypergradients of a finished inner optimisation w_0 → w_T (Reverse-HG and DrMAD): the input they
 * share, and g = ∂_λL_V(w_T) + g^SO with α_T = ∇_wL_V(w_T) reversed along the caller's points.
 */
import { tidy } from '@metagrad/tensor';
import type { ParamTree } from '@metagrad/models';
import { emptyStats, type HypergradInput, type HypergradTensors } from '../hypergrad/types';
import { lincombTree, valGradients } from './products';
import { reverseHypergradient } from './reverse';
import { checkInnerOptimiser } from './inner';
import { checkedEstimate, type CheckedHypergradResult } from './checked';

/** A finished inner optimisation: `theta` is w_T, `trainBatches` are D_1 … D_T, `innerLr` is η. */
export interface TrajectoryInput<Batch> extends HypergradInput<ParamTree, ParamTree, Batch> {
  /** η, the inner optimiser's step. */
  innerLr: number;
  /** w_0. */
  initial: ParamTree;
  /** Heavy-ball momentum μ of the inner optimiser (default 0). */
  momentum?: number;
}

/** Adds the stored iterates w_1 … w_{T−1} (w_0 is `initial`, w_T is `theta`). */
export interface StoredTrajectoryInput<Batch> extends TrajectoryInput<Batch> {
  trajectory: readonly ParamTree[];
}

export class MissingTrajectoryError extends Error {
  override name = 'MissingTrajectoryError';
}

export function checkTrajectoryInput<Batch>(where: string, input: TrajectoryInput<Batch>): readonly Batch[] {
  if (!input.initial) throw new MissingTrajectoryError(`${where}: the input needs 'initial' (w_0) besides theta (w_T)`);
  const batches = input.trainBatches;
  if (!batches || batches.length === 0) throw new MissingTrajectoryError(`${where}: the input needs trainBatches D_1 … D_T (got ${batches?.length ?? 'none'})`);
  checkInnerOptimiser(where, { lr: input.innerLr, momentum: input.momentum ?? 0 });
  return batches;
}

/** The hypergradient along `point(t)` = w_{t−1}, L_V(w_T) and the work done, without a readback (so it compiles). */
export function trajectoryHypergradientTensors<Batch>(
  input: TrajectoryInput<Batch>,
  batches: readonly Batch[],
  point: (t: number) => ParamTree,
): HypergradTensors {
  return tidy(() => {
    const { alpha, direct, loss } = valGradients(input.problem, input.theta, input.lambda, input.valBatch);
    const { gSO, jvps } = reverseHypergradient({
      problem: input.problem,
      lambda: input.lambda,
      trainBatches: batches,
      lr: input.innerLr,
      momentum: input.momentum ?? 0,
      alphaT: alpha,
      point,
    });
    const T = batches.length;
    return {
      hypergrad: lincombTree(1, direct, 1, gSO),
      valLoss: loss,
      stats: { ...emptyStats(), jvps, gradients: 1 + T, forwards: 1 + T },
    };
  });
}

/** The same with ‖hypergradient‖ read with L_V: a NaN/Inf one is a NonFiniteHypergradientError naming `estimator`. */
export function trajectoryHypergradient<Batch>(
  estimator: string,
  input: TrajectoryInput<Batch>,
  batches: readonly Batch[],
  point: (t: number) => ParamTree,
): Promise<CheckedHypergradResult> {
  const t0 = performance.now();
  return checkedEstimate(estimator, t0, () => trajectoryHypergradientTensors(input, batches, point));
}
