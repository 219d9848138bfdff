/**
 * @file Outer optimisation steps with any functional optimiser, and adaptation from a learned initialisation (for
 * evaluation). Meta-batches are in batch.ts, the compiled meta-batch in compiled-batch.ts.
 *
 * MetaTrainer compiles the meta-batch's gradient (the mean over tasks of the learner's readback-free core, with the
 * mean outer loss) by default: one replayed submit per outer step, the outer loss read once after it, and the outer
 * optimiser's step as before (eagerly, outside the replay).
 */
import { InvalidArgumentError, dispose, scope } from '@metagrad/tensor';
import type { CompileStats } from '@metagrad/autograd';
import { type ParamTree, tree } from '@metagrad/models';
import { CompiledSteps } from '../compiled';
import { carry, carryAsync } from '../core/loop';
import { metaGradientBatch } from './batch';
import { CompiledMetaBatch } from './compiled-batch';
import { checkPositive, checkPositiveInt, gdStep, lossGradient } from './inner';
import { type MetaGradientStats, type MetaLearner, type MetaProblem, newMetaStats } from './types';

/**
 * The functional optimiser shape of @metagrad/models (`sgd`, `adam`): `step` never disposes its inputs, and its state
 * is tensors in plain objects and arrays, so a step's old parameters and state are freed by what the new ones drop.
 */
export interface OuterOptimizer<S> {
  init(params: ParamTree): S;
  step<T extends ParamTree>(params: T, grads: ParamTree, state: S): { params: T; state: S };
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
  private current: { params: P; state: S };
  iteration = 0;
  private readonly compiled: CompiledSteps;
  private readonly batch: CompiledMetaBatch<P, D> | null = null;

  /** Takes a copy of `theta` (the caller keeps its own). */
  constructor(
    readonly learner: MetaLearner,
    readonly problem: MetaProblem<P, D>,
    theta: P,
    readonly optimizer: OuterOptimizer<S>,
    options: MetaTrainerOptions = {},
  ) {
    const params = tree.clone(theta);
    this.current = { params, state: optimizer.init(params) };
    const device = tree.leaves(theta)[0]?.device;
    this.compiled = new CompiledSteps((options.compile ?? true) && learner.metaGradientTensors !== undefined, device);
    if (learner.metaGradientTensors) this.batch = new CompiledMetaBatch(this.compiled, learner, problem, params);
  }

  /** Why this trainer fell back to eager steps (a TraceError's message), or null. */
  get compileFallback(): string | null {
    return this.compiled.fallback;
  }

  /** The compiled meta-batch's counters (eager, traced and replayed calls; dispatches per replay), or null when eager. */
  compileStats(): CompileStats | null {
    return this.batch?.stats() ?? null;
  }

  /** The current initialisation (owned by the trainer: copy it to keep it past the next step or dispose). */
  get theta(): P {
    return this.current.params;
  }

  /** One outer step on a meta-batch (a carry of θ and the optimiser state); returns the batch's mean outer loss and counters. */
  async step(tasks: readonly D[]): Promise<{ outerLoss: number; stats: MetaGradientStats }> {
    let log = { outerLoss: NaN, stats: newMetaStats() };
    this.current = await carryAsync(this.current, async ({ params, state }) => {
      const { gradient, outerLoss, stats } = (await this.batch?.run(params, tasks)) ?? (await metaGradientBatch(this.learner, this.problem, params, tasks));
      log = { outerLoss, stats };
      return this.optimizer.step(params, gradient, state);
    });
    this.iteration++;
    return log;
  }

  /** Frees θ, the optimiser state and the compiled plans. */
  dispose(): void {
    this.compiled.dispose();
    dispose(this.current);
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

/** Meta-test adaptation: plain GD from θ on a task's support loss (each step a carry of u), evaluated at the requested steps. */
export async function adapt<P extends ParamTree, D>(problem: MetaProblem<P, D>, theta: P, task: D, o: AdaptOptions<P>): Promise<number[]> {
  checkPositiveInt('adapt', 'steps', o.steps);
  checkPositive('adapt', 'innerLr', o.innerLr);
  for (const k of o.evalAt) {
    if (!(Number.isInteger(k) && k >= 0 && k <= o.steps)) throw new InvalidArgumentError(`adapt: evalAt entries must be integers in [0, ${o.steps}], got ${k}`);
  }
  const want = new Set(o.evalAt);
  const values = new Map<number, number>();
  await scope(async () => {
    let u: P = theta;
    for (let k = 0; ; k++) {
      if (want.has(k)) values.set(k, await o.evaluate(u, k));
      if (k === o.steps) return;
      u = carry(
        u,
        (uk) =>
          gdStep(
            uk,
            lossGradient((p: P) => problem.innerLoss(p, task), uk),
            o.innerLr,
          ),
        theta,
      );
    }
  });
  return o.evalAt.map((k) => values.get(k)!);
}
