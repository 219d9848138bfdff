/**
 * @file MetaTrainer's compiled meta-batch: the mean gradient and mean outer loss of a meta-batch as one compiled
 * function of θ's leaves and the tasks' tensors (one replayed submit and one readback per outer step). Tasks' host
 * values stay out of the signature; a TraceError (e.g. a loss that reads one) means eager from then on.
 */
import { Tensor, scope } from '@metagrad/tensor';
import type { CompiledFunction, CompileStats } from '@metagrad/autograd';
import { type ParamTree, tree } from '@metagrad/models';
import type { CompiledSteps } from '../compiled';
import { type BatchMetaGradient, metaGradientBatchTensors } from './batch';
import type { MetaGradientStats, MetaLearner, MetaProblem } from './types';

/** What the compiled meta-batch returns: the mean gradient's leaves and the mean outer loss. */
interface BatchTensors {
  gradient: Tensor[];
  outerLoss: Tensor;
  stats: MetaGradientStats;
}

/** A task's tensors in walk order, or null when it holds something other than plain objects, arrays, tensors and primitives. */
function taskTensors(value: unknown, out: Tensor[] = []): Tensor[] | null {
  if (value instanceof Tensor) {
    out.push(value);
    return out;
  }
  if (Array.isArray(value)) {
    for (const v of value) if (!taskTensors(v, out)) return null;
    return out;
  }
  if (typeof value === 'object' && value !== null) {
    if (Object.getPrototypeOf(value) !== Object.prototype) return null;
    for (const v of Object.values(value)) if (!taskTensors(v, out)) return null;
    return out;
  }
  return typeof value === 'function' ? null : out;
}

/** `value` with its tensors replaced, in walk order, by `tensors` (host values kept). */
function withTensors<T>(value: T, tensors: readonly Tensor[], at = { i: 0 }): T {
  if (value instanceof Tensor) return tensors[at.i++] as T;
  if (Array.isArray(value)) return value.map((v) => withTensors(v, tensors, at)) as T;
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withTensors(v, tensors, at)])) as T;
  }
  return value;
}

/** The compiled meta-batch of one trainer (its θ's tree shape, learner and problem), one of the trainer's compiled steps. */
export class CompiledMetaBatch<P extends ParamTree, D> {
  private readonly compiled: CompiledFunction<[Tensor[], Tensor[][]], BatchTensors> | null;
  /** The tasks of the compiled call in progress (their host values; the tensors come in as arguments). */
  private currentTasks: readonly D[] = [];

  constructor(
    private readonly steps: CompiledSteps,
    private readonly learner: MetaLearner,
    private readonly problem: MetaProblem<P, D>,
    private like: P,
  ) {
    this.compiled = steps.add((thetaLeaves: Tensor[], tensors: Tensor[][]) => this.batchTensors(thetaLeaves, tensors));
  }

  /** The compiled core: θ's leaves and each task's tensors as arguments, the tasks' host values from `currentTasks`. */
  private batchTensors(thetaLeaves: Tensor[], tensors: Tensor[][]): BatchTensors {
    const theta = tree.fromLeaves(this.like, thetaLeaves);
    const tasks = this.currentTasks.map((task, i) => withTensors(task, tensors[i]));
    const r = metaGradientBatchTensors(this.learner, this.problem, theta, tasks);
    return { gradient: tree.leaves(r.gradient), outerLoss: r.outerLoss, stats: r.stats };
  }

  /**
   * The batch's gradient at θ through the compiled core (in a scope: the outer loss is read and freed), or null
   * where it does not apply (the caller then runs eagerly).
   */
  async run(theta: P, tasks: readonly D[]): Promise<BatchMetaGradient<P> | null> {
    if (!this.steps.live(this.compiled) || tasks.length === 0) return null;
    const tensors: Tensor[][] = [];
    for (const task of tasks) {
      const ts = taskTensors(task);
      if (!ts) return null;
      tensors.push(ts);
    }
    this.like = theta;
    this.currentTasks = tasks;
    return scope(async () => {
      // A TraceError: eager steps from now on (null: the caller runs this batch eagerly).
      const out = await this.steps.run(this.compiled, () => null, tree.leaves(theta), tensors).finally(() => (this.currentTasks = []));
      if (!out) return null;
      return {
        gradient: tree.fromLeaves(this.like, out.gradient),
        outerLoss: await out.outerLoss.item(),
        stats: { ...out.stats },
      };
    });
  }

  /** Counters of the compiled function (eager, traced and replayed calls; dispatches per replay), or null once freed. */
  stats(): CompileStats | null {
    return this.steps.live(this.compiled)?.stats() ?? null;
  }
}
