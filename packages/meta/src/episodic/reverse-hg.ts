/** @file Reverse-HG (Algorithm 1): exact reverse mode over the stored trajectory, through momentum; memory grows with T. */
import type { HypergradEstimator, HypergradResult } from '../hypergrad/types';
import { MissingTrajectoryError, checkTrajectoryInput, trajectoryHypergradient, type StoredTrajectoryInput } from '../core';

export class ReverseHG<Batch> implements HypergradEstimator<Batch> {
  readonly name = 'reverse-hg';

  estimate(input: StoredTrajectoryInput<Batch>): Promise<HypergradResult> {
    const batches = checkTrajectoryInput('ReverseHG', input);
    const traj = input.trajectory;
    if (!traj || traj.length !== batches.length - 1) {
      throw new MissingTrajectoryError(
        `ReverseHG: need the ${batches.length - 1} iterates w_1 … w_{T−1} for T = ${batches.length}, got ${traj?.length ?? 'none'}`,
      );
    }
    return trajectoryHypergradient(this.name, input, batches, (t) => (t === 1 ? input.initial : traj[t - 2]));
  }
}
