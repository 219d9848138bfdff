/** @file Dormand–Prince 5(4): the step with its embedded error estimate, Hairer's step-size controller and first-step heuristic, dense output. */
import { InvalidArgumentError, NonFiniteDynamicsError, StepSizeUnderflowError, TooManyStepsError } from '../errors';
import { type OdeFunc, type SolverStats, evalF } from './steppers';
import { type VectorOps, isAllFinite, linComb, normForMessage, release, retain, scaledError, weightedSum } from './vector-ops';

// Butcher tableau (Dormand & Prince 1980; Hairer, Nørsett & Wanner, Table II.5.2).
const C = [0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1];
const A: number[][] = [
  [],
  [1 / 5],
  [3 / 40, 9 / 40],
  [44 / 45, -56 / 15, 32 / 9],
  [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
  [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
];
/** 5th-order weights; also row 7 of A, which is what makes the method FSAL (k7 = f(t+h, y1) is the next k1). */
const B = [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84];
/** b − b̂: the difference to the embedded 4th-order solution, over all seven stages. */
const E = [71 / 57600, 0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40];
/** Hairer's continuous extension (DOPRI5 `contd5`), 4th order inside the step. */
const D = [-12715105075 / 11282082432, 0, 87487479700 / 32700410799, -10690763975 / 1880347072,
  701980252875 / 199316789632, -1453857185 / 822651844, 69997945 / 29380423];

export interface Dopri5Options {
  rtol: number;
  atol: number;
  /** First step; omitted, Hairer's heuristic picks it (two extra f evaluations' worth: one). */
  firstStep?: number;
  /** Smallest step the controller may propose before giving up (absolute). */
  minStep?: number;
  /** Budget of attempted (accepted + rejected) steps over the integrator's life. */
  maxSteps: number;
  /** Safety factor on the optimal step (Hairer: 0.9). */
  safety: number;
  /** Bounds on the step-size ratio per step (Hairer: 0.2 and 10). */
  minFactor: number;
  maxFactor: number;
}

/** y(t0 + θh) from the stages of an accepted step: y0 + θΔ + θ(1−θ)[hk1 − Δ + θ(2Δ − hk1 − hk7 + (1−θ)·hΣd_i k_i)] expanded. */
function denseOutput<V>(ops: VectorOps<V>, theta: number, h: number, y0: V, y1: V, ks: V[]): V {
  const th1 = 1 - theta;
  const b = theta * th1;
  const c = theta * b;
  const d = c * th1;
  const cy = theta - b + 2 * c;
  const coef = [h * (b - c + d * D[0]), 0, h * d * D[2], h * d * D[3], h * d * D[4], h * d * D[5], h * (d * D[6] - c)];
  return linComb(ops, y0, [[-cy, y0], [cy, y1], ...coef.map((k, i) => [k, ks[i]] as const)]);
}

/**
 * A running Dormand–Prince integrator over increasing time: state (t, y, k1 = f(t, y), proposed h). It only ever
 * lands exactly on the end of an `integrate` call, so a run restarted at such a point with the same proposed step
 * (`h`) repeats the original bit for bit — which is what checkpoint recomputation relies on.
 */
export class Dopri5Integrator<V> {
  private lastRejected = false;
  /** The last rejection was for a non-finite error estimate (some stage of f was NaN/Inf). */
  private lastNonFinite = false;

  private constructor(
    private readonly f: OdeFunc<V>,
    private readonly ops: VectorOps<V>,
    private readonly opts: Dopri5Options,
    readonly stats: SolverStats,
    public t: number,
    public y: V,
    private ownsY: boolean,
    private k1: V,
    /** The step the controller proposes next. */
    public h: number,
  ) {}

  /** Starts at (t0, y0) (y0 stays the caller's). `tEndHint` bounds the heuristic first step. */
  static async start<V>(
    f: OdeFunc<V>, ops: VectorOps<V>, opts: Dopri5Options, stats: SolverStats, t0: number, y0: V, tEndHint: number,
  ): Promise<Dopri5Integrator<V>> {
    const k1 = await evalF(f, t0, y0, stats);
    try {
      const h = opts.firstStep ?? (await initialStep(f, ops, opts, stats, t0, y0, k1, tEndHint - t0));
      return new Dopri5Integrator(f, ops, opts, stats, t0, y0, false, k1, h);
    } catch (e) {
      release(ops, k1);
      throw e;
    }
  }

  /**
   * Advances to tEnd (clipping the last step to land on it) and hands out, in order, the state at each time in
   * `outputs` (sorted, within [t, tEnd]) as a fresh vector: exact at step ends, dense output in between.
   */
  async integrate(tEnd: number, outputs: readonly number[], emit: (index: number, y: V) => void): Promise<void> {
    const { ops, opts, stats } = this;
    let next = 0;
    while (next < outputs.length && outputs[next] <= this.t) emit(next++, retain(ops, this.y));
    while (this.t < tEnd) {
      if (stats.steps + stats.rejected >= opts.maxSteps) throw new TooManyStepsError(this.t, opts.maxSteps, tEnd);
      const proposed = this.h;
      // Below ~eps·|t| the step no longer moves t; below minStep the user has said the problem is too stiff. The
      // scale includes tEnd so that at t = 0 the step cannot shrink into denormals (where h·E_i rounds to 0).
      const resolution = Math.max(Math.abs(this.t), Math.abs(tEnd)) * Number.EPSILON;
      if (!(proposed > 0) || 0.1 * proposed <= resolution || (opts.minStep !== undefined && proposed < opts.minStep)) {
        if (this.lastNonFinite) {
          throw new NonFiniteDynamicsError(
            this.t,
            await normForMessage(ops, this.y),
            `f is finite at t but returned NaN or ±Infinity at a stage of every step tried after it, down to h = ${proposed.toExponential(3)}`,
          );
        }
        throw new StepSizeUnderflowError(this.t, proposed);
      }
      // Hairer's 1.01 rule: stretch to the end rather than leave a sliver of a step.
      const last = this.t + 1.01 * proposed >= tEnd;
      const h = last ? tEnd - this.t : proposed;
      const tNew = last ? tEnd : this.t + h;
      const { y1, ks } = await this.stages(h, tNew);
      const errVec = weightedSum(ops, E.map((e, i) => [h * e, ks[i]] as const));
      const err = await scaledError(ops, errVec, this.y, y1, opts.rtol, opts.atol);
      release(ops, errVec);
      if (err <= 1) {
        while (next < outputs.length && outputs[next] <= tNew) {
          const to = outputs[next];
          emit(next++, to === tNew ? retain(ops, y1) : denseOutput(ops, (to - this.t) / h, h, this.y, y1, ks));
        }
        let fac = err === 0 ? opts.maxFactor : Math.min(opts.maxFactor, Math.max(opts.minFactor, opts.safety * err ** -0.2));
        // After a rejection do not grow at once (Hairer): the error model just proved optimistic.
        if (this.lastRejected) fac = Math.min(fac, 1);
        release(ops, ...ks.slice(0, 6), this.ownsY ? this.y : undefined);
        this.y = y1;
        this.ownsY = true;
        this.k1 = ks[6];
        this.t = tNew;
        // A step clipped to land on tEnd says little about the natural step: keep the larger proposal.
        this.h = last ? Math.max(h * fac, proposed) : h * fac;
        this.lastRejected = false;
        this.lastNonFinite = false;
        stats.steps++;
      } else {
        // NaN/Inf error: if f(t, y) itself is not finite no step can help (the check is a readback, on this path
        // only); otherwise a stage overflowed, so shrink as much as allowed and retry.
        if (!Number.isFinite(err) && !(await isAllFinite(ops, this.k1))) {
          release(ops, y1, ...ks.slice(1));
          throw new NonFiniteDynamicsError(this.t, await normForMessage(ops, this.y));
        }
        this.lastNonFinite = !Number.isFinite(err);
        const fac = Number.isFinite(err) ? Math.max(opts.minFactor, opts.safety * err ** -0.2) : opts.minFactor;
        release(ops, y1, ...ks.slice(1));
        this.h = h * fac;
        this.lastRejected = true;
        stats.rejected++;
      }
    }
  }

  /** The six new stages of a step of size h (k1 is reused) and the 5th-order solution. */
  private async stages(h: number, tNew: number): Promise<{ y1: V; ks: V[] }> {
    const { f, ops, stats, y } = this;
    const ks: V[] = [this.k1];
    for (let s = 1; s < 6; s++) {
      const ys = linComb(ops, y, A[s].map((a, i) => [h * a, ks[i]] as const));
      ks.push(await evalF(f, s === 5 ? tNew : this.t + C[s] * h, ys, stats));
      release(ops, ys);
    }
    const y1 = linComb(ops, y, B.map((b, i) => [h * b, ks[i]] as const));
    ks.push(await evalF(f, tNew, y1, stats));
    return { y1, ks };
  }

  /** Releases what the integrator owns (the current state unless it is the caller's y0, and k1). */
  dispose(): void {
    release(this.ops, this.k1, this.ownsY ? this.y : undefined);
  }
}

/**
 * Hairer's first-step heuristic (HNW I, II.4, `hinit`): a step whose Euler error would be about 1% of the scale,
 * refined with a second-derivative estimate from one extra f evaluation, for a method of order 5.
 */
async function initialStep<V>(
  f: OdeFunc<V>, ops: VectorOps<V>, opts: Dopri5Options, stats: SolverStats, t0: number, y0: V, f0: V, span: number,
): Promise<number> {
  const { rtol, atol } = opts;
  const d0 = await scaledError(ops, y0, y0, y0, rtol, atol);
  const d1 = await scaledError(ops, f0, y0, y0, rtol, atol);
  // Both are read back anyway: a non-finite one is checked exactly (readbacks on this path only).
  if (!Number.isFinite(d0) && !(await isAllFinite(ops, y0))) throw new InvalidArgumentError('dopri5: the initial state y0 has NaN or infinite entries');
  if (!Number.isFinite(d1) && !(await isAllFinite(ops, f0))) throw new NonFiniteDynamicsError(t0, await normForMessage(ops, y0));
  let h0 = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : (0.01 * d0) / d1;
  h0 = Math.min(h0, span);
  const y1 = ops.axpy(h0, f0, y0);
  const f1 = await evalF(f, t0 + h0, y1, stats);
  const df = ops.axpy(-1, f0, f1);
  const d2 = (await scaledError(ops, df, y0, y0, rtol, atol)) / h0;
  release(ops, y1, f1, df);
  const der = Math.max(d1, d2);
  const h1 = der <= 1e-15 ? Math.max(1e-6, h0 * 1e-3) : (0.01 / der) ** (1 / 5);
  const h = Math.min(100 * h0, h1, span);
  // A non-finite estimate (f overflowing at y0) falls back to a tiny step the controller can grow from.
  return Number.isFinite(h) && h > 0 ? h : Math.min(1e-6, span);
}
