/** @file DrMAD (Fu et al., 2016; Algorithm 2): reverse mode along the straight line from w_0 to w_T. */
/*
 * DrMAD (Fu et al., 2016; the HyperDistill paper's Algorithm 2): reverse mode along the straight line from
 * w_0 to w_T instead of the stored trajectory, ŵ_{t−1} = (1 − (t−1)/T) w_0 + ((t−1)/T) w_T. Constant memory in T,
 * 2T − 1 JVPs, offline (one hypergradient per inner optimisation). Momentum enters as in ReverseHG.
 */
import type { HypergradEstimator, HypergradResult, HypergradTensors } from '../hypergrad/types';
import { checkTrajectoryInput, trajectoryHypergradient, trajectoryHypergradientTensors, type TrajectoryInput } from '../core/trajectory';
import { interpolate } from '../core/reverse';

export class DrMAD<Batch> implements HypergradEstimator<Batch> {
  readonly name = 'drmad';

  estimate(input: TrajectoryInput<Batch>): Promise<HypergradResult> {
    const batches = checkTrajectoryInput('DrMAD', input);
    return trajectoryHypergradient(this.name, input, batches, (t) => interpolate(input.initial, input.theta, t, batches.length));
  }

  /** The same hypergradient without a readback (no finite check: the caller reads the norm), for compiled episodes. */
  estimateTensors(input: TrajectoryInput<Batch>): HypergradTensors {
    const batches = checkTrajectoryInput('DrMAD', input);
    return trajectoryHypergradientTensors(input, batches, (t) => interpolate(input.initial, input.theta, t, batches.length));
  }
}
