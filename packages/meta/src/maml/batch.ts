/** @file Meta-batches: the mean meta-gradient and mean outer loss over tasks, read back or as tensors (what MetaTrainer compiles). */
import { InvalidArgumentError, type Tensor, tidy } from '@metagrad/tensor';
import { noGrad } from '@metagrad/autograd';
import { type ParamTree, tree } from '@metagrad/models';
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

/** sum + g, graph-free, freeing the previous sum and g: the running sum of per-task gradients (or losses). */
function accumulate<P extends ParamTree>(sum: P | undefined, g: P): P {
  if (sum === undefined) return g;
  const next = noGrad(() => tree.add(sum, g));
  tree.dispose([sum, g]);
  return next;
}

/** The meta-batch's mean meta-gradient (Algorithm 1, line 7): tasks one after another, gradients summed as they come. */
export async function metaGradientBatch<P extends ParamTree, D>(
  learner: MetaLearner, problem: MetaProblem<P, D>, theta: P, tasks: readonly D[],
): Promise<BatchMetaGradient<P>> {
  if (tasks.length === 0) throw new InvalidArgumentError('metaGradientBatch: the meta-batch is empty');
  const stats = newMetaStats();
  let sum: P | undefined;
  let loss = 0;
  try {
    for (const task of tasks) {
      const r = await learner.metaGradient(problem, theta, task);
      loss += r.outerLoss;
      addStats(stats, r.stats);
      sum = accumulate(sum, r.gradient);
    }
  } catch (e) {
    if (sum) tree.dispose(sum);
    throw e;
  }
  const mean = tasks.length === 1 ? sum! : noGrad(() => tree.scale(sum!, 1 / tasks.length));
  if (mean !== sum) tree.dispose(sum!);
  return { gradient: mean, outerLoss: loss / tasks.length, stats };
}

/**
 * The meta-batch's mean meta-gradient and mean outer loss as tensors, without a readback (the learner's
 * `metaGradientTensors` per task, summed as they come): what MetaTrainer compiles. The caller owns the result.
 */
export function metaGradientBatchTensors<P extends ParamTree, D>(
  learner: MetaLearner, problem: MetaProblem<P, D>, theta: P, tasks: readonly D[],
): MetaGradientTensors<P> {
  if (tasks.length === 0) throw new InvalidArgumentError('metaGradientBatchTensors: the meta-batch is empty');
  if (!learner.metaGradientTensors) throw new InvalidArgumentError(`metaGradientBatchTensors: ${learner.name} has no readback-free core (metaGradientTensors)`);
  const stats = newMetaStats();
  return tidy(() => noGrad(() => {
    // Partial sums are freed as the next replaces them, so memory stays one gradient whatever the batch size.
    let sum: P | undefined;
    let loss: Tensor | undefined;
    for (const task of tasks) {
      const r = learner.metaGradientTensors!(problem, theta, task);
      addStats(stats, r.stats);
      sum = accumulate(sum, r.gradient);
      loss = accumulate(loss, r.outerLoss);
    }
    if (tasks.length === 1) return { gradient: sum!, outerLoss: loss!, stats };
    return { gradient: tree.scale(sum!, 1 / tasks.length), outerLoss: tree.scale(loss!, 1 / tasks.length), stats };
  }));
}
