/** @file Meta-batches, outer optimisation steps with any functional optimiser, and adaptation from a learned initialisation (for evaluation). */
import * as raw from '@metagrad/tensor';
import { InvalidArgumentError } from '@metagrad/tensor';
import { type ParamTree, fromLeaves, leaves } from '@metagrad/models';
import { checkPositive, checkPositiveInt, disposeTree, gdStep, lossGradient } from './inner';
import { type MetaGradientStats, type MetaLearner, type MetaProblem, newMetaStats } from './types';

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

/** A meta-training state: the initialisation θ and the outer optimiser's state, both owned here. */
export class MetaTrainer<P extends ParamTree, D, S> {
  private thetaTree: P;
  private state: S;
  iteration = 0;

  /** Takes a copy of `theta` (the caller keeps its own). */
  constructor(
    readonly learner: MetaLearner,
    readonly problem: MetaProblem<P, D>,
    theta: P,
    readonly optimizer: OuterOptimizer<S>,
  ) {
    this.thetaTree = fromLeaves(theta, leaves(theta).map((t) => raw.mulScalar(t, 1)));
    this.state = optimizer.init(this.thetaTree);
  }

  /** The current initialisation (owned by the trainer: copy it to keep it past the next step or dispose). */
  get theta(): P {
    return this.thetaTree;
  }

  /** One outer step on a meta-batch; returns the batch's mean outer loss and counters. */
  async step(tasks: readonly D[]): Promise<{ outerLoss: number; stats: MetaGradientStats }> {
    const { gradient, outerLoss, stats } = await metaGradientBatch(this.learner, this.problem, this.thetaTree, tasks);
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
