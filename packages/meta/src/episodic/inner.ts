/**
 * @file The inner optimisation of one task (or a meta-batch of tasks stacked in w): T steps of heavy-ball SGD with
 * λ held constant, using the functional `sgd` of @metagrad/models under noGrad, with a hook after every step.
 */
import { noGrad } from '@metagrad/autograd';
import { InvalidArgumentError } from '@metagrad/tensor';
import type { Tensor } from '@metagrad/tensor';
import { disposeTree, normTree, sgd, type ParamTree, type SgdState } from '@metagrad/models';
import type { BilevelProblem } from '../hypergrad/types';
import { trainGradient, trainLossAndGradient } from './products';

export interface InnerOptimiser {
  /** Inner learning rate η. */
  lr: number;
  /** Heavy-ball momentum μ ∈ [0, 1) (torch's SGD, dampening 0). */
  momentum: number;
}

export function checkInnerOptimiser(where: string, o: InnerOptimiser): void {
  if (!(Number.isFinite(o.lr) && o.lr > 0)) throw new InvalidArgumentError(`${where}: inner lr must be a finite number > 0, got ${o.lr}`);
  if (!(Number.isFinite(o.momentum) && o.momentum >= 0 && o.momentum < 1)) {
    throw new InvalidArgumentError(`${where}: inner momentum must be in [0, 1), got ${o.momentum}`);
  }
}

/** What the hook sees after step t (w_{t−1} and w_t stay alive until the hook's promise settles). */
export interface InnerStep<Batch> {
  t: number;
  T: number;
  wPrev: ParamTree;
  w: ParamTree;
  batch: Batch;
}

export interface RunInnerOptions<Batch> {
  problem: BilevelProblem<ParamTree, ParamTree, Batch>;
  /** λ at each step (read before every step, so online methods can update it in between). */
  lambda: () => ParamTree;
  w0: ParamTree;
  batches: readonly Batch[];
  optimiser: InnerOptimiser;
  onStep?(step: InnerStep<Batch>): Promise<void> | void;
  /** Keep w_0 … w_{T−1} (for exact reverse mode); they are returned and owned by the caller. */
  keepTrajectory?: boolean;
  /**
   * Return the last step's training loss and ‖gradient‖ as device scalars (`last`), for a finite check read back
   * with whatever the caller reads next: NaN/Inf persists through later SGD steps, so the last step shows any.
   */
  trackLast?: boolean;
}

export interface InnerRun {
  /** w_T (owned by the caller). */
  wT: ParamTree;
  /** w_0 … w_{T−1} copies when keepTrajectory (w_0 is the caller's w0 tree itself, so it is not included: index 0 = w_1). */
  trajectory: ParamTree[];
  /** With `trackLast`: L_T(w_{T−1}, λ; D_T) and ‖∇_w L_T‖ there (owned by the caller). */
  last?: { loss: Tensor; gradNorm: Tensor };
}

/**
 * One heavy-ball step from w on `batch` (the gradient and the old state freed): the new parameters and state, and
 * with `track` L_T and ‖∇_w L_T‖ at w (owned by the caller).
 */
function innerStep<Batch>(
  o: Pick<RunInnerOptions<Batch>, 'problem' | 'lambda'>, opt: ReturnType<typeof sgd>, w: ParamTree, state: SgdState, batch: Batch, track: boolean,
): { params: ParamTree; state: SgdState; last?: InnerRun['last'] } {
  let g: ParamTree;
  let last: InnerRun['last'];
  if (track) {
    const lg = trainLossAndGradient(o.problem, w, o.lambda(), batch);
    g = lg.gradient;
    last = { loss: lg.loss, gradNorm: noGrad(() => normTree(g)) };
  } else {
    g = trainGradient(o.problem, w, o.lambda(), batch);
  }
  const next = noGrad(() => opt.step(w, g, state));
  disposeTree(g);
  opt.disposeState(state);
  return { ...next, last };
}

/** Runs T = batches.length steps from w0 (not disposed) and returns w_T. */
export async function runInner<Batch>(o: RunInnerOptions<Batch>): Promise<InnerRun> {
  checkInnerOptimiser('runInner', o.optimiser);
  const opt = sgd({ lr: o.optimiser.lr, momentum: o.optimiser.momentum });
  let state: SgdState = opt.init(o.w0);
  let w = o.w0;
  const trajectory: ParamTree[] = [];
  const T = o.batches.length;
  let last: InnerRun['last'];
  /** w_{t−1} while the hook runs (freed after it, so also when it throws). */
  let pending: ParamTree | null = null;
  try {
    for (let t = 1; t <= T; t++) {
      const next = innerStep(o, opt, w, state, o.batches[t - 1], Boolean(o.trackLast) && t === T);
      if (next.last) last = next.last;
      state = next.state;
      const prev = w;
      w = next.params;
      pending = prev;
      if (o.onStep) await o.onStep({ t, T, wPrev: prev, w, batch: o.batches[t - 1] });
      pending = null;
      if (o.keepTrajectory && t < T) trajectory.push(w);
      else if (prev !== o.w0 && !(o.keepTrajectory && trajectory.includes(prev))) disposeTree(prev);
    }
    return { wT: w, trajectory, last };
  } catch (e) {
    if (w !== o.w0 && !trajectory.includes(w)) disposeTree(w);
    if (pending && pending !== o.w0 && !trajectory.includes(pending)) disposeTree(pending);
    trajectory.forEach(disposeTree);
    if (last) disposeTree([last.loss, last.gradNorm]);
    throw e;
  } finally {
    opt.disposeState(state);
  }
}

/**
 * runInner's steps without a hook, synchronous and without a readback (so `compile` can capture a whole inner
 * optimisation): w_T and the last step's training loss and ‖gradient‖, all owned by the caller (w0 is not disposed).
 */
export function runInnerTensors<Batch>(o: Omit<RunInnerOptions<Batch>, 'onStep' | 'keepTrajectory' | 'trackLast'>): Required<Omit<InnerRun, 'trajectory'>> {
  checkInnerOptimiser('runInnerTensors', o.optimiser);
  const T = o.batches.length;
  if (T === 0) throw new InvalidArgumentError('runInnerTensors: no batches (T = 0)');
  const opt = sgd({ lr: o.optimiser.lr, momentum: o.optimiser.momentum });
  let state: SgdState = opt.init(o.w0);
  let w = o.w0;
  let last: InnerRun['last'];
  try {
    for (let t = 1; t <= T; t++) {
      const next = innerStep(o, opt, w, state, o.batches[t - 1], t === T);
      if (next.last) last = next.last;
      state = next.state;
      if (w !== o.w0) disposeTree(w);
      w = next.params;
    }
    return { wT: w, last: last! };
  } catch (e) {
    if (w !== o.w0) disposeTree(w);
    if (last) disposeTree([last.loss, last.gradNorm]);
    throw e;
  } finally {
    opt.disposeState(state);
  }
}
