/** @file Meta-batches: the mean meta-gradient and mean outer loss over tasks, read back or as tensors (what MetaTrainer compiles). */
import { InvalidArgumentError, type Tensor, scope, tidy } from '@metagrad/tensor';
import { noGrad } from '@metagrad/autograd';
import { type ParamTree, tree } from '@metagrad/models';
import { carry, carryAsync } from '../core/loop';
import { type MetaGradientStats, type MetaGradientTensors, type MetaLearner, type MetaProblem, newMetaStats } from './types';

export interface BatchMetaGradient<P extends ParamTree> {
  /** Mean meta-gradient over the tasks (owned by the caller). */
  gradient: P;
  /** Mean outer loss J over the tasks. */
  outerLoss: number;
  /** Summed counters. */
  stats: MetaGradientStats;
}

function addStats(into: MetaGradientStats, s: MetaGradientStats): void {
  into.innerGradients += s.innerGradients;
  into.hvps += s.hvps;
  into.innerSteps += s.innerSteps;
}

/** The running sums of per-task gradients and outer losses. */
interface Sums<G, L> {
  gradient?: G;
  loss?: L;
}

/** sum + x, graph-free (the first term as is). */
const plus = <T extends ParamTree>(sum: T | undefined, x: T): T => (sum === undefined ? x : noGrad(() => tree.add(sum, x)));

/**
 * The meta-batch's mean meta-gradient (Algorithm 1, line 7): tasks one after another, each a `carry` of the running
 * sum, so memory stays one gradient whatever the batch size.
 */
export async function metaGradientBatch<P extends ParamTree, D>(
  learner: MetaLearner,
  problem: MetaProblem<P, D>,
  theta: P,
  tasks: readonly D[],
): Promise<BatchMetaGradient<P>> {
  if (tasks.length === 0) throw new InvalidArgumentError('metaGradientBatch: the meta-batch is empty');
  const stats = newMetaStats();
  return scope(async () => {
    let sums: Sums<P, number> = {};
    for (const task of tasks) {
      sums = await carryAsync(sums, async ({ gradient, loss = 0 }) => {
        const r = await learner.metaGradient(problem, theta, task);
        addStats(stats, r.stats);
        return { gradient: plus(gradient, r.gradient), loss: loss + r.outerLoss };
      });
    }
    const mean = tasks.length === 1 ? sums.gradient! : noGrad(() => tree.scale(sums.gradient!, 1 / tasks.length));
    return { gradient: mean, outerLoss: sums.loss! / tasks.length, stats };
  });
}

/**
 * The meta-batch's mean meta-gradient and mean outer loss as tensors, without a readback (the learner's
 * `metaGradientTensors` per task, summed as they come): what MetaTrainer compiles. The caller owns the result.
 */
export function metaGradientBatchTensors<P extends ParamTree, D>(
  learner: MetaLearner,
  problem: MetaProblem<P, D>,
  theta: P,
  tasks: readonly D[],
): MetaGradientTensors<P> {
  if (tasks.length === 0) throw new InvalidArgumentError('metaGradientBatchTensors: the meta-batch is empty');
  if (!learner.metaGradientTensors) throw new InvalidArgumentError(`metaGradientBatchTensors: ${learner.name} has no readback-free core (metaGradientTensors)`);
  const stats = newMetaStats();
  return tidy(() =>
    noGrad(() => {
      // Each task a carry of the running sums, so memory stays one gradient whatever the batch size.
      let sums: Sums<P, Tensor> = {};
      for (const task of tasks) {
        sums = carry(sums, ({ gradient, loss }) => {
          const r = learner.metaGradientTensors!(problem, theta, task);
          addStats(stats, r.stats);
          return { gradient: plus(gradient, r.gradient), loss: plus(loss, r.outerLoss) };
        });
      }
      const { gradient, loss } = sums as Required<Sums<P, Tensor>>;
      if (tasks.length === 1) return { gradient, outerLoss: loss, stats };
      return { gradient: tree.scale(gradient, 1 / tasks.length), outerLoss: tree.scale(loss, 1 / tasks.length), stats };
    }),
  );
}
