/**
 * @file Meta-batches, outer optimisation steps with any functional optimiser, and adaptation from a learned
 * initialisation (for evaluation).
 *
 * MetaTrainer compiles the meta-batch's gradient (the mean over tasks of the learner's readback-free core, with the
 * mean outer loss) by default: one replayed submit per outer step, the outer loss read once after it, and the outer
 * optimiser's step as before (eagerly, outside the replay).
 */
import * as raw from '@metagrad/tensor';
import { InvalidArgumentError, Tensor } from '@metagrad/tensor';
import { compiledOrEager } from '../compiled';
import { compile, type CompiledFunction, type CompileStats } from '@metagrad/autograd';
import { type ParamTree, fromLeaves, leaves } from '@metagrad/models';
import { checkPositive, checkPositiveInt, disposeTree, gdStep, lossGradient, readScalar } from './inner';
import { type MetaGradientStats, type MetaGradientTensors, type MetaLearner, type MetaProblem, newMetaStats } from './types';

/** The functional optimiser shape of @metagrad/models (`sgd`, `adam`): `step` never disposes its inputs. */
export interface OuterOptimizer<S> {
  init(params: ParamTree): S;
  step<T extends ParamTree>(params: T, grads: ParamTree, state: S): { params: T; state: S };
  disposeState(state: S): void;
}

export interface BatchMetaGradient<P extends ParamTree> {
  /** Mean meta-gradient over the tasks (owned by the caller). */
  gradient: P;
  /** Mean outer loss J over the tasks. */
  outerLoss: number;
  /** Summed counters. */
  stats: MetaGradientStats;
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
      stats.innerGradients += r.stats.innerGradients;
      stats.hvps += r.stats.hvps;
      stats.innerSteps += r.stats.innerSteps;
      if (!sum) sum = r.gradient;
      else {
        const next = fromLeaves(sum, leaves(sum).map((s, i) => raw.add(s, leaves(r.gradient)[i])));
        disposeTree(sum);
        disposeTree(r.gradient);
        sum = next;
      }
    }
  } catch (e) {
    if (sum) disposeTree(sum);
    throw e;
  }
  const mean = tasks.length === 1 ? sum! : fromLeaves(sum!, leaves(sum!).map((s) => raw.mulScalar(s, 1 / tasks.length)));
  if (mean !== sum) disposeTree(sum!);
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
  let sum: P | undefined;
  let loss: Tensor | undefined;
  try {
    for (const task of tasks) {
      const r = learner.metaGradientTensors(problem, theta, task);
      stats.innerGradients += r.stats.innerGradients;
      stats.hvps += r.stats.hvps;
      stats.innerSteps += r.stats.innerSteps;
      if (!loss) loss = r.outerLoss;
      else {
        const next = raw.add(loss, r.outerLoss);
        loss.dispose();
        r.outerLoss.dispose();
        loss = next;
      }
      if (!sum) sum = r.gradient;
      else {
        const next = fromLeaves(sum, leaves(sum).map((s, i) => raw.add(s, leaves(r.gradient)[i])));
        disposeTree(sum);
        disposeTree(r.gradient);
        sum = next;
      }
    }
  } catch (e) {
    if (sum) disposeTree(sum);
    loss?.dispose();
    throw e;
  }
  if (tasks.length === 1) return { gradient: sum!, outerLoss: loss!, stats };
  const mean = fromLeaves(sum!, leaves(sum!).map((s) => raw.mulScalar(s, 1 / tasks.length)));
  const meanLoss = raw.mulScalar(loss!, 1 / tasks.length);
  disposeTree(sum!);
  loss!.dispose();
  return { gradient: mean, outerLoss: meanLoss, stats };
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

export interface MetaTrainerOptions {
  /**
   * Replay the meta-batch's gradient and outer losses as one compiled function of the tasks' tensors (default true;
   * see `compile` in @metagrad/autograd), for learners with `metaGradientTensors` (MAML, FOMAML, Reptile); the outer
   * optimiser's step stays outside it. Learners without the core (iMAML, Adjoint-MAML) and tasks holding anything
   * but plain objects, arrays, tensors and host primitives run as before; a TraceError (e.g. a loss that uses a
   * task's host value) switches the trainer to eager steps, with the reason in `compileFallback`. A task's host
   * values never enter the compiled call's signature: tasks with the same tensor shapes share one plan.
   */
  compile?: boolean;
}

/** What the compiled meta-batch returns: the mean gradient's leaves and the mean outer loss. */
interface BatchTensors {
  gradient: Tensor[];
  outerLoss: Tensor;
  stats: MetaGradientStats;
}

/** A meta-training state: the initialisation θ and the outer optimiser's state, both owned here. */
export class MetaTrainer<P extends ParamTree, D, S> {
  private thetaTree: P;
  private state: S;
  iteration = 0;
  /** Why this trainer fell back to eager steps (a TraceError's message), or null. */
  compileFallback: string | null = null;
  private compiled: CompiledFunction<[Tensor[], Tensor[][]], BatchTensors> | null = null;
  /** The tasks of the compiled call in progress (their host values; the tensors come in as arguments). */
  private currentTasks: readonly D[] = [];

  /** Takes a copy of `theta` (the caller keeps its own). */
  constructor(
    readonly learner: MetaLearner,
    readonly problem: MetaProblem<P, D>,
    theta: P,
    readonly optimizer: OuterOptimizer<S>,
    options: MetaTrainerOptions = {},
  ) {
    this.thetaTree = fromLeaves(theta, leaves(theta).map((t) => raw.mulScalar(t, 1)));
    this.state = optimizer.init(this.thetaTree);
    if ((options.compile ?? true) && learner.metaGradientTensors) {
      const device = leaves(this.thetaTree)[0]?.device;
      this.compiled = compile((thetaLeaves: Tensor[], tensors: Tensor[][]) => this.batchTensors(thetaLeaves, tensors), device ? { device } : {});
    }
  }

  /** The compiled core: θ's leaves and each task's tensors as arguments, the tasks' host values from `currentTasks`. */
  private batchTensors(thetaLeaves: Tensor[], tensors: Tensor[][]): BatchTensors {
    const theta = fromLeaves(this.thetaTree, thetaLeaves);
    const tasks = this.currentTasks.map((task, i) => withTensors(task, tensors[i]));
    const r = metaGradientBatchTensors(this.learner, this.problem, theta, tasks);
    return { gradient: leaves(r.gradient), outerLoss: r.outerLoss, stats: r.stats };
  }

  /** The batch's gradient through the compiled core, or null where it does not apply (the caller then runs eagerly). */
  private async compiledBatch(tasks: readonly D[]): Promise<BatchMetaGradient<P> | null> {
    if (!this.compiled || tasks.length === 0) return null;
    const tensors: Tensor[][] = [];
    for (const task of tasks) {
      const ts = taskTensors(task);
      if (!ts) return null;
      tensors.push(ts);
    }
    let out: BatchTensors | null;
    this.currentTasks = tasks;
    try {
      // A TraceError: eager steps from now on (null: the caller runs this batch eagerly).
      out = await compiledOrEager(this.compiled, () => null, (reason) => {
        this.compileFallback = reason;
        this.disposeCompiled();
      }, leaves(this.thetaTree), tensors);
    } finally {
      this.currentTasks = [];
    }
    if (!out) return null;
    let outerLoss: number;
    try {
      outerLoss = await readScalar(out.outerLoss);
    } catch (e) {
      raw.dispose(out.gradient);
      throw e;
    }
    return { gradient: fromLeaves(this.thetaTree, out.gradient), outerLoss, stats: { ...out.stats } };
  }

  /** The compiled meta-batch's counters (eager, traced and replayed calls; dispatches per replay), or null when eager. */
  compileStats(): CompileStats | null {
    return this.compiled?.stats() ?? null;
  }

  /** Frees the compiled meta-batch's plans; the trainer keeps working, eagerly. */
  disposeCompiled(): void {
    this.compiled?.dispose();
    this.compiled = null;
  }

  /** The current initialisation (owned by the trainer: copy it to keep it past the next step or dispose). */
  get theta(): P {
    return this.thetaTree;
  }

  /** One outer step on a meta-batch; returns the batch's mean outer loss and counters. */
  async step(tasks: readonly D[]): Promise<{ outerLoss: number; stats: MetaGradientStats }> {
    const { gradient, outerLoss, stats } = (await this.compiledBatch(tasks)) ?? (await metaGradientBatch(this.learner, this.problem, this.thetaTree, tasks));
    try {
      const next = this.optimizer.step(this.thetaTree, gradient, this.state);
      if (next.params !== this.thetaTree) disposeTree(this.thetaTree);
      if (next.state !== this.state) this.optimizer.disposeState(this.state);
      this.thetaTree = next.params;
      this.state = next.state;
    } finally {
      disposeTree(gradient);
    }
    this.iteration++;
    return { outerLoss, stats };
  }

  dispose(): void {
    this.disposeCompiled();
    disposeTree(this.thetaTree);
    this.optimizer.disposeState(this.state);
  }
}

export interface AdaptOptions<P extends ParamTree> {
  /** GD steps on the support loss. */
  steps: number;
  innerLr: number;
  /** Step counts (0…steps) at which to call `evaluate`. */
  evalAt: readonly number[];
  /** A metric of the parameters after k steps (e.g. the query nRMSE). */
  evaluate(params: P, step: number): Promise<number>;
}

/** Meta-test adaptation: plain GD from θ on a task's support loss, evaluated at the requested steps. */
export async function adapt<P extends ParamTree, D>(problem: MetaProblem<P, D>, theta: P, task: D, o: AdaptOptions<P>): Promise<number[]> {
  checkPositiveInt('adapt', 'steps', o.steps);
  checkPositive('adapt', 'innerLr', o.innerLr);
  for (const k of o.evalAt) {
    if (!(Number.isInteger(k) && k >= 0 && k <= o.steps)) throw new InvalidArgumentError(`adapt: evalAt entries must be integers in [0, ${o.steps}], got ${k}`);
  }
  const want = new Set(o.evalAt);
  const values = new Map<number, number>();
  let u: P = theta;
  try {
    for (let k = 0; ; k++) {
      if (want.has(k)) values.set(k, await o.evaluate(u, k));
      if (k === o.steps) break;
      const g = lossGradient((p: P) => problem.innerLoss(p, task), u);
      const next = gdStep(u, g, o.innerLr);
      disposeTree(g);
      if (u !== theta) disposeTree(u);
      u = next;
    }
  } finally {
    if (u !== theta) disposeTree(u);
  }
  return o.evalAt.map((k) => values.get(k)!);
}
