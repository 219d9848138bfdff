/** @file Reptile (Nichol et al. 2018): adapt with plain GD and move θ towards the adapted weights. */
import type { ParamTree } from '@metagrad/models';
import { type MamlOptions, innerGd } from './maml';
import { checkPositive, checkPositiveInt, disposeTree, evalLoss, subTrees } from './inner';
import { type MetaGradient, type MetaLearner, type MetaProblem, newMetaStats } from './types';

/**
 * Reptile's update direction θ − u_n, returned as the "gradient" so that any outer optimiser minimising with it
 * moves θ towards u_n (plain SGD with lr ε gives θ ← θ + ε(u_n − θ), the original rule). The inner loop adapts on
 * the support set only, like the other learners, so all of them see the same data.
 */
export function Reptile(options: MamlOptions): MetaLearner {
  checkPositiveInt('Reptile', 'steps', options.steps);
  checkPositive('Reptile', 'innerLr', options.innerLr);
  return {
    name: 'Reptile',
    async metaGradient<P extends ParamTree, D>(problem: MetaProblem<P, D>, theta: P, task: D): Promise<MetaGradient<P>> {
      const stats = newMetaStats();
      const u = await innerGd(problem, theta, task, options, 0, stats);
      try {
        const gradient = subTrees(theta, u);
        const outerLoss = await evalLoss((p: P) => problem.outerLoss(p, task), u);
        return { gradient, outerLoss, stats };
      } finally {
        disposeTree(u);
      }
    },
  };
}
