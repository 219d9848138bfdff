/**
 * @file Outer optimisation steps with any functional optimiser, and adaptation from a learned initialisation (for
 * evaluation). Meta-batches are in batch.ts, the compiled meta-batch in compiled-batch.ts.
 *
 * MetaTrainer compiles the meta-batch's gradient (the mean over tasks of the learner's readback-free core, with the
 * mean outer loss) by default: one replayed submit per outer step, the outer loss read once after it, and the outer
 * optimiser's step as before (eagerly, outside the replay).
 */
import { InvalidArgumentError, tidy } from '@metagrad/tensor';
import type { CompileStats } from '@metagrad/autograd';
import { type ParamTree, tree } from '@metagrad/models';
import { metaGradientBatch } from './batch';
import { CompiledMetaBatch } from './compiled-batch';
import { checkPositive, checkPositiveInt, disposeTree, gdStep, lossGradient } from './inner';
import type { MetaGradientStats, MetaLearner, MetaProblem } from './types';

/** The functional optimiser shape of @metagrad/models (`sgd`, `adam`): `step` never disposes its inputs. */
export interface OuterOptimizer<S> {
  init(params: ParamTree): S;
  step<T extends ParamTree>(params: T, grads: ParamTree, state: S): { params: T; state: S };
  disposeState(state: S): void;
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

/** A meta-training state: the initialisation θ and the outer optimiser's state, both owned here. */
export class MetaTrainer<P extends ParamTree, D, S> {
  private thetaTree: P;
  private state: S;
  iteration = 0;
  private compiled: CompiledMetaBatch<P, D> | null = null;

  /** Takes a copy of `theta` (the caller keeps its own). */
  constructor(
    readonly learner: MetaLearner,
    readonly problem: MetaProblem<P, D>,
    theta: P,
    readonly optimizer: OuterOptimizer<S>,
    options: MetaTrainerOptions = {},
  ) {
    this.thetaTree = tree.clone(theta);
    this.state = optimizer.init(this.thetaTree);
    if ((options.compile ?? true) && learner.metaGradientTensors) this.compiled = new CompiledMetaBatch(learner, problem, this.thetaTree);
  }

  /** Why this trainer fell back to eager steps (a TraceError's message), or null. */
  get compileFallback(): string | null {
    return this.compiled?.fallback ?? null;
  }

  /** The compiled meta-batch's counters (eager, traced and replayed calls; dispatches per replay), or null when eager. */
  compileStats(): CompileStats | null {
    return this.compiled?.stats() ?? null;
  }

  /** Frees the compiled meta-batch's plans; the trainer keeps working, eagerly. */
  disposeCompiled(): void {
    this.compiled?.dispose();
  }

  /** The current initialisation (owned by the trainer: copy it to keep it past the next step or dispose). */
  get theta(): P {
    return this.thetaTree;
  }

  /** One outer step on a meta-batch; returns the batch's mean outer loss and counters. */
  async step(tasks: readonly D[]): Promise<{ outerLoss: number; stats: MetaGradientStats }> {
    const { gradient, outerLoss, stats } = (await this.compiled?.run(this.thetaTree, tasks)) ?? (await metaGradientBatch(this.learner, this.problem, this.thetaTree, tasks));
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
      const current = u;
      const next = tidy(() => gdStep(current, lossGradient((p: P) => problem.innerLoss(p, task), current), o.innerLr));
      if (u !== theta) disposeTree(u);
      u = next;
    }
  } finally {
    if (u !== theta) disposeTree(u);
  }
  return o.evalAt.map((k) => values.get(k)!);
}
