/** @file Dormand–Prince 5(4): the step with its embedded error estimate, Hairer's step-size controller and first-step heuristic, dense output. */
import { InvalidArgumentError, NonFiniteDynamicsError, StepSizeUnderflowError, TooManyStepsError } from '../errors';
import { type ScopedOps, scoped } from './scopes';
import { type OdeFunc, type SolverStats, evalF } from './steppers';
import { type VectorOps, isAllFinite, linComb, normForMessage, retain, scaledError, weightedSum } from './vector-ops';

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

/** The integrator between steps: time, state y, k1 = f(t, y) (first same as last), the proposed step, the controller's memory. */
interface Dopri5State<V> {
  t: number;
  y: V;
  k1: V;
  h: number;
  /** The last attempt was rejected: do not grow the next step at once (Hairer). */
  lastRejected: boolean;
  /** …for a non-finite error estimate (some stage of f was NaN/Inf). */
  lastNonFinite: boolean;
}

/**
 * A running Dormand–Prince integrator over increasing time. It only ever lands exactly on the end of an `integrate`
 * call, so a run restarted at such a point with the same proposed step (`h`) repeats the original bit for bit —
 * which is what checkpoint recomputation relies on. Its state belongs to the scope it was started in: start it and
 * call `integrate` from the same scope (each attempted step is a `carry` of that state).
 */
export class Dopri5Integrator<V> {
  private constructor(
    private readonly f: OdeFunc<V>,
    private readonly vs: ScopedOps<V>,
    private readonly opts: Dopri5Options,
    readonly stats: SolverStats,
    private state: Dopri5State<V>,
  ) {}

  /** The step the controller proposes next. */
  get h(): number {
    return this.state.h;
  }

  /** Starts at (t0, y0) (y0 stays the caller's). `tEndHint` bounds the heuristic first step. */
  static async start<V>(
    f: OdeFunc<V>, ops: VectorOps<V>, opts: Dopri5Options, stats: SolverStats, t0: number, y0: V, tEndHint: number,
  ): Promise<Dopri5Integrator<V>> {
    const vs = scoped(ops);
    const k1 = await evalF(f, t0, y0, stats, vs);
    const h = opts.firstStep ?? (await initialStep(f, vs, opts, stats, t0, y0, k1, tEndHint - t0));
    return new Dopri5Integrator(f, vs, opts, stats, { t: t0, y: y0, k1, h, lastRejected: false, lastNonFinite: false });
  }

  /**
   * Advances to tEnd (clipping the last step to land on it) and returns the state at each time in `outputs` (sorted,
   * within [t, tEnd]) as fresh vectors: exact at step ends, dense output in between.
   */
  async integrate(tEnd: number, outputs: readonly number[]): Promise<V[]> {
    const { vs, opts, stats } = this;
    const out = outputs.filter((to) => to <= this.state.t).map(() => retain(vs, this.state.y));
    while (this.state.t < tEnd) {
      if (stats.steps + stats.rejected >= opts.maxSteps) throw new TooManyStepsError(this.state.t, opts.maxSteps, tEnd);
      const { t, y, h: proposed, lastNonFinite } = this.state;
      // Below ~eps·|t| the step no longer moves t; below minStep the user has said the problem is too stiff. The
      // scale includes tEnd so that at t = 0 the step cannot shrink into denormals (where h·E_i rounds to 0).
      const resolution = Math.max(Math.abs(t), Math.abs(tEnd)) * Number.EPSILON;
      if (!(proposed > 0) || 0.1 * proposed <= resolution || (opts.minStep !== undefined && proposed < opts.minStep)) {
        if (lastNonFinite) {
          throw new NonFiniteDynamicsError(t, await normForMessage(vs, y),
            `f is finite at t but returned NaN or ±Infinity at a stage of every step tried after it, down to h = ${proposed.toExponential(3)}`);
        }
        throw new StepSizeUnderflowError(t, proposed);
      }
      const due = outputs.slice(out.length);
      const next = await vs.carry(this.state, (s) => this.attempt(s, tEnd, due));
      this.state = next.state;
      out.push(...next.emitted);
    }
    return out;
  }

  /** One attempted step from state s: accepted, the new state and the outputs it passed; rejected, s with a smaller h. */
  private async attempt(s: Dopri5State<V>, tEnd: number, due: readonly number[]): Promise<{ state: Dopri5State<V>; emitted: V[] }> {
    const { vs, opts, stats } = this;
    const proposed = s.h;
    // Hairer's 1.01 rule: stretch to the end rather than leave a sliver of a step.
    const last = s.t + 1.01 * proposed >= tEnd;
    const h = last ? tEnd - s.t : proposed;
    const tNew = last ? tEnd : s.t + h;
    const { y1, ks } = await this.stages(s, h, tNew);
    // The embedded error estimate h·Σ E_i k_i, measured against the tolerances (and freed at once).
    const err = await vs.scope(() => scaledError(vs, weightedSum(vs, E.map((e, i) => [h * e, ks[i]] as const)), s.y, y1, opts.rtol, opts.atol));
    if (err <= 1) {
      const emitted = due.filter((to) => to <= tNew).map((to) => (to === tNew ? retain(vs, y1) : denseOutput(vs, (to - s.t) / h, h, s.y, y1, ks)));
      let fac = err === 0 ? opts.maxFactor : Math.min(opts.maxFactor, Math.max(opts.minFactor, opts.safety * err ** -0.2));
      // After a rejection do not grow at once (Hairer): the error model just proved optimistic.
      if (s.lastRejected) fac = Math.min(fac, 1);
      stats.steps++;
      // A step clipped to land on tEnd says little about the natural step: keep the larger proposal.
      const state = { t: tNew, y: y1, k1: ks[6], h: last ? Math.max(h * fac, proposed) : h * fac, lastRejected: false, lastNonFinite: false };
      return { state, emitted };
    }
    // NaN/Inf error: if f(t, y) itself is not finite no step can help (the check is a readback, on this path only);
    // otherwise a stage overflowed, so shrink as much as allowed and retry.
    if (!Number.isFinite(err) && !(await isAllFinite(vs, s.k1))) throw new NonFiniteDynamicsError(s.t, await normForMessage(vs, s.y));
    const fac = Number.isFinite(err) ? Math.max(opts.minFactor, opts.safety * err ** -0.2) : opts.minFactor;
    stats.rejected++;
    return { state: { ...s, h: h * fac, lastRejected: true, lastNonFinite: !Number.isFinite(err) }, emitted: [] };
  }

  /** k_s = f(t + c_s·h, y + h·Σ_i a_si·k_i) for the six new stages (k1 is reused), and the 5th-order solution y1. */
  private async stages(s: Dopri5State<V>, h: number, tNew: number): Promise<{ y1: V; ks: V[] }> {
    const { f, vs, stats } = this;
    const ks: V[] = [s.k1];
    for (let st = 1; st < 6; st++) {
      const ts = st === 5 ? tNew : s.t + C[st] * h;
      ks.push(await vs.scope(() => evalF(f, ts, linComb(vs, s.y, A[st].map((a, i) => [h * a, ks[i]] as const)), stats, vs)));
    }
    const y1 = linComb(vs, s.y, B.map((b, i) => [h * b, ks[i]] as const));
    ks.push(await evalF(f, tNew, y1, stats, vs));
    return { y1, ks };
  }
}

/**
 * Hairer's first-step heuristic (HNW I, II.4, `hinit`): a step whose Euler error would be about 1% of the scale,
 * refined with a second-derivative estimate from one extra f evaluation, for a method of order 5.
 */
async function initialStep<V>(
  f: OdeFunc<V>, vs: ScopedOps<V>, opts: Dopri5Options, stats: SolverStats, t0: number, y0: V, f0: V, span: number,
): Promise<number> {
  const { rtol, atol } = opts;
  const d0 = await scaledError(vs, y0, y0, y0, rtol, atol);
  const d1 = await scaledError(vs, f0, y0, y0, rtol, atol);
  // Both are read back anyway: a non-finite one is checked exactly (readbacks on this path only).
  if (!Number.isFinite(d0) && !(await isAllFinite(vs, y0))) throw new InvalidArgumentError('dopri5: the initial state y0 has NaN or infinite entries');
  if (!Number.isFinite(d1) && !(await isAllFinite(vs, f0))) throw new NonFiniteDynamicsError(t0, await normForMessage(vs, y0));
  const h0 = Math.min(d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : (0.01 * d0) / d1, span);
  // d2: the change of f over an Euler step of h0, a second-derivative estimate.
  const d2 = await vs.scope(async () => {
    const f1 = await evalF(f, t0 + h0, vs.axpy(h0, f0, y0), stats, vs);
    return (await scaledError(vs, vs.axpy(-1, f0, f1), y0, y0, rtol, atol)) / h0;
  });
  const der = Math.max(d1, d2);
  const h1 = der <= 1e-15 ? Math.max(1e-6, h0 * 1e-3) : (0.01 / der) ** (1 / 5);
  const h = Math.min(100 * h0, h1, span);
  // A non-finite estimate (f overflowing at y0) falls back to a tiny step the controller can grow from.
  return Number.isFinite(h) && h > 0 ? h : Math.min(1e-6, span);
}
