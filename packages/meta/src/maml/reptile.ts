/** @file Reptile (Nichol et al. 2018): adapt with plain GD and move θ towards the adapted weights. */
import { noGrad } from '@metagrad/autograd';
import { tree } from '@metagrad/models';
import { type MamlOptions, graphFreeLearner } from './maml';
import type { MetaLearner } from './types';

/**
 * Reptile's update direction θ − u_n, returned as the "gradient" so that any outer optimiser minimising with it
 * moves θ towards u_n (plain SGD with lr ε gives θ ← θ + ε(u_n − θ), the original rule). The inner loop adapts on
 * the support set only, like the other learners, so all of them see the same data.
 */
export function Reptile(options: MamlOptions): MetaLearner {
  return graphFreeLearner('Reptile', options, (_problem, theta, _task, u) => noGrad(() => tree.sub(theta, u)));
}
