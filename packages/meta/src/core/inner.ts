/** @file The inner optimisation: T steps of heavy-ball SGD on L_T with λ read before each step and a hook after it. */
/*
 * The inner optimisation of one task (or a meta-batch of tasks stacked in w): T steps of heavy-ball SGD,
 * m_t = μ m_{t−1} + ∇_w L_T(w_{t−1}, λ; D_t), w_t = w_{t−1} − η m_t (torch's SGD), with λ read before every step so
 * online methods can update it in between, and a hook after every step.
 */
import { noGrad } from '@metagrad/autograd';
import { InvalidArgumentError, scope, tidy, type Tensor } from '@metagrad/tensor';
import { normTree, sgd, type FunctionalOptimizer, type ParamTree, type SgdState } from '@metagrad/models';
import type { BilevelProblem } from '../hypergrad/types';
import { trainGradient, trainLossAndGradient } from './products';
import { carry, carryAsync } from './loop';

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
  /** After each step; what it makes and does not `keep()` is freed when it settles. */
  onStep?(step: InnerStep<Batch>): Promise<void> | void;
  /** Keep w_1 … w_{T−1} (for exact reverse mode); they are returned and owned by the caller. */
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
  /** w_1 … w_{T−1} when keepTrajectory (w_0 is the caller's w0 itself, so index 0 = w_1). */
  trajectory: ParamTree[];
  /** With `trackLast`: L_T(w_{T−1}, λ; D_T) and ‖∇_w L_T‖ there (owned by the caller). */
  last?: { loss: Tensor; gradNorm: Tensor };
}

interface InnerState {
  w: ParamTree;
  sgd: SgdState;
  trajectory: ParamTree[];
  last?: InnerRun['last'];
}

/** One heavy-ball step from w on D (pure): w_t and the optimiser state, with `track` L_T and ‖∇_w L_T‖ at w. */
function innerStep<Batch>(
  problem: RunInnerOptions<Batch>['problem'],
  lambda: ParamTree,
  opt: FunctionalOptimizer<SgdState>,
  s: InnerState,
  batch: Batch,
  track: boolean,
): InnerState {
  return tidy(() => {
    const lg = track ? trainLossAndGradient(problem, s.w, lambda, batch) : { gradient: trainGradient(problem, s.w, lambda, batch), loss: null };
    const next = noGrad(() => opt.step(s.w, lg.gradient, s.sgd));
    const last = lg.loss ? { loss: lg.loss, gradNorm: noGrad(() => normTree(lg.gradient)) } : s.last;
    return { w: next.params, sgd: next.state, trajectory: s.trajectory, last };
  });
}

const heavyBall = (o: InnerOptimiser): FunctionalOptimizer<SgdState> => sgd({ lr: o.lr, momentum: o.momentum });

/** Runs T = batches.length steps from w0 (the caller's, untouched) and returns w_T. */
export function runInner<Batch>(o: RunInnerOptions<Batch>): Promise<InnerRun> {
  checkInnerOptimiser('runInner', o.optimiser);
  const opt = heavyBall(o.optimiser);
  const T = o.batches.length;
  return scope(async () => {
    let s: InnerState = { w: o.w0, sgd: opt.init(o.w0), trajectory: [] };
    for (let t = 1; t <= T; t++) {
      const batch = o.batches[t - 1];
      s = await carryAsync(
        s,
        async (prev) => {
          // The step itself frees the old momentum buffers at once; w_{t−1} lives until the hook has seen it.
          const next = carry(prev, (p) => innerStep(o.problem, o.lambda(), opt, p, batch, Boolean(o.trackLast) && t === T), [o.w0, prev.w]);
          await o.onStep?.({ t, T, wPrev: prev.w, w: next.w, batch });
          return o.keepTrajectory && t < T ? { ...next, trajectory: [...next.trajectory, next.w] } : next;
        },
        o.w0,
      );
    }
    return { wT: s.w, trajectory: s.trajectory, last: s.last };
  });
}

/**
 * runInner's steps without a hook, synchronous and without a readback (so `compile` can capture a whole inner
 * optimisation): w_T and the last step's training loss and ‖gradient‖.
 */
export function runInnerTensors<Batch>(o: Omit<RunInnerOptions<Batch>, 'onStep' | 'keepTrajectory' | 'trackLast'>): Required<Omit<InnerRun, 'trajectory'>> {
  checkInnerOptimiser('runInnerTensors', o.optimiser);
  const T = o.batches.length;
  if (T === 0) throw new InvalidArgumentError('runInnerTensors: no batches (T = 0)');
  const opt = heavyBall(o.optimiser);
  return tidy(() => {
    let s: InnerState = { w: o.w0, sgd: opt.init(o.w0), trajectory: [] };
    for (let t = 1; t <= T; t++) s = carry(s, (prev) => innerStep(o.problem, o.lambda(), opt, prev, o.batches[t - 1], t === T), o.w0);
    return { wT: s.w, last: s.last! };
  });
}
