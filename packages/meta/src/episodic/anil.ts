/** @file ANIL (Raghu et al., 2019) regression as a batched bilevel problem: λ a shared feature network, w one linear head per task. */
/*
 * ANIL (Raghu et al., 2019) regression as a batched bilevel problem: λ is a feature network shared by the
 * tasks, w is one linear head per task stacked along a task dimension (weight [B, h, 1], bias [B, 1, 1]), so a
 * meta-batch of B tasks is one batched forward. The training loss sums the tasks' mean squared errors (so each
 * head's gradient is its own task's), the validation loss averages them (so the hypergradient is the task mean).
 */
import { add, expand, matmul, mean, mulScalar, noGrad, reshape, square, sub, sum } from '@metagrad/autograd';
import { ShapeError, tidy, type Tensor } from '@metagrad/tensor';
import { mapTree, type ParamTree } from '@metagrad/models';
import type { BilevelProblem } from '../hypergrad/types';
import type { RegressionBatch } from '../core';

export interface AnilHead {
  weight: Tensor;
  bias: Tensor;
}

export interface AnilProblemOptions<Λ extends ParamTree = ParamTree> {
  /** Features of x [N, d] → [N, h] under λ (e.g. an MLP whose last layer is followed by its activation). */
  features(lambda: Λ, x: Tensor): Tensor;
}

export interface AnilProblem<Λ extends ParamTree = ParamTree> extends BilevelProblem<ParamTree, Λ, RegressionBatch> {
  /** Per-task predictions [B, n, 1]. */
  predict(head: ParamTree, lambda: Λ, x: Tensor): Tensor;
  /** w_0: the shared head φ ([1, h, 1], [1, 1, 1]) repeated for B tasks. */
  initialWeights(phi: ParamTree, tasks: number): ParamTree;
  /** Mean over the task dimension (the Reptile target), shaped like φ. */
  taskMean(w: ParamTree): ParamTree;
}

export function anilProblem<Λ extends ParamTree = ParamTree>(options: AnilProblemOptions<Λ>): AnilProblem<Λ> {
  const predict = (head: ParamTree, lambda: Λ, x: Tensor): Tensor =>
    tidy(() => {
      const { weight, bias } = head as unknown as AnilHead;
      if (x.rank !== 3) throw new ShapeError(`anilProblem: x must be [B, n, d], got [${x.shape.join(', ')}]`);
      const [B, n, d] = x.shape;
      const f = options.features(lambda, reshape(x, [B * n, d]));
      const h = f.shape[1];
      if (weight.shape[0] !== B || weight.shape[1] !== h)
        throw new ShapeError(`anilProblem: head weight [${weight.shape.join(', ')}] does not fit ${B} tasks × ${h} features`);
      return add(matmul(reshape(f, [B, n, h]), weight), bias);
    });
  /** Σ_tasks mean_examples (pred − y)², as a scalar. */
  const taskSum = (head: ParamTree, lambda: Λ, batch: RegressionBatch): Tensor =>
    tidy(() => {
      const n = batch.x.shape[1];
      return mulScalar(sum(square(sub(predict(head, lambda, batch.x), batch.y))), 1 / n);
    });
  return {
    predict,
    trainLoss: taskSum,
    valLoss: (head, lambda, batch) => tidy(() => mulScalar(taskSum(head, lambda, batch), 1 / batch.x.shape[0])),
    initialWeights: (phi, tasks) => noGrad(() => mapTree(phi, (t) => expand(t, [tasks, ...t.shape.slice(1)]))),
    taskMean: (w) => noGrad(() => mapTree(w, (t) => mean(t, 0, true))),
  };
}
