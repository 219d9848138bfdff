/** @file The usual few-shot regression MetaProblem: mean squared error of a model on the support and query sets. */
import { mse } from '@metagrad/autograd';
import { tidy, type Tensor } from '@metagrad/tensor';
import type { ParamTree } from '@metagrad/models';
import type { MetaProblem, SupervisedData, SupportQueryTask } from './types';

/** Inner loss: MSE of `apply(params, x)` on the support set; outer loss J: the same on the query set. */
export function mseRegressionProblem<P extends ParamTree>(apply: (params: P, x: Tensor) => Tensor): MetaProblem<P, SupportQueryTask> {
  const loss = (p: P, d: SupervisedData): Tensor => tidy(() => mse(apply(p, d.x), d.y));
  return { innerLoss: (p, task) => loss(p, task.support), outerLoss: (p, task) => loss(p, task.query) };
}
