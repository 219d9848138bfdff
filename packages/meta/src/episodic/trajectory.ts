/**
 * @file Offline hypergradients of a whole inner optimisation: `ReverseHG` (Algorithm 1: exact reverse mode over the
 * stored trajectory, through momentum) and the shared input type that DrMAD uses too.
 */
import { disposeTree, type ParamTree } from '@metagrad/models';
import { emptyStats, type HypergradEstimator, type HypergradInput, type HypergradResult, type HypergradTensors } from '../hypergrad/types';
import { lincombTree, valGradients } from './products';
import { reverseHypergradient } from './reverse';
import { checkInnerOptimiser } from './inner';
import { finishCheckedResult } from './checked';

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

/**
 * The reverse pass shared by ReverseHG and DrMAD: α_T and g^FO at w_T, then g^SO backwards along `point(t)`.
 * The caller's `point` may allocate; `release` frees what it allocated. ‖hypergradient‖ is read with the
 * validation loss: a NaN/Inf one is a NonFiniteHypergradientError naming `estimator`.
 */
export async function trajectoryHypergradient<Batch>(
  estimator: string,
  input: TrajectoryInput<Batch>,
  batches: readonly Batch[],
  point: (t: number) => ParamTree,
  release: (w: ParamTree, t: number) => void,
): Promise<HypergradResult> {
  const t0 = performance.now();
  const out = trajectoryHypergradientTensors(input, batches, point, release);
  return finishCheckedResult(estimator, out.hypergrad, out.valLoss, out.stats, t0);
}

/**
 * The same reverse pass without a readback (so `compile` can capture it): the hypergradient, L_V(w_T) and the
 * work done (`stats.ms` is 0), all owned by the caller.
 */
export function trajectoryHypergradientTensors<Batch>(
  input: TrajectoryInput<Batch>,
  batches: readonly Batch[],
  point: (t: number) => ParamTree,
  release: (w: ParamTree, t: number) => void,
): HypergradTensors {
  const { alpha, direct, loss } = valGradients(input.problem, input.theta, input.lambda, input.valBatch);
  try {
    const { gSO, jvps } = reverseHypergradient({
      problem: input.problem,
      lambda: input.lambda,
      trainBatches: batches,
      lr: input.innerLr,
      momentum: input.momentum ?? 0,
      alphaT: alpha,
      point,
      release,
    });
    const hypergrad = lincombTree(1, direct, 1, gSO);
    disposeTree(gSO);
    return { hypergrad, valLoss: loss, stats: { ...emptyStats(), jvps, gradients: 1 + batches.length, forwards: 1 + batches.length } };
  } catch (e) {
    loss.dispose();
    throw e;
  } finally {
    disposeTree(alpha);
    disposeTree(direct);
  }
}

/** Algorithm 1 (Reverse-HG) through heavy-ball momentum: exact for the stored trajectory; memory grows with T. */
export class ReverseHG<Batch> implements HypergradEstimator<Batch> {
  readonly name = 'reverse-hg';

  estimate(input: StoredTrajectoryInput<Batch>): Promise<HypergradResult> {
    const batches = checkTrajectoryInput('ReverseHG', input);
    const traj = input.trajectory;
    if (!traj || traj.length !== batches.length - 1) {
      throw new MissingTrajectoryError(`ReverseHG: need the ${batches.length - 1} iterates w_1 … w_{T−1} for T = ${batches.length}, got ${traj?.length ?? 'none'}`);
    }
    return trajectoryHypergradient(this.name, input, batches, (t) => (t === 1 ? input.initial : traj[t - 2]), () => {});
  }
}
