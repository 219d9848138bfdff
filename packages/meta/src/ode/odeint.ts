/** @file `odeint`: torchdiffeq-shaped ODE solve returning the state at each requested time, generic over VectorOps. */
import { InvalidArgumentError, NonFiniteDynamicsError, StepSizeUnderflowError, TooManyStepsError } from '../errors';
import { Dopri5Integrator, type Dopri5Options } from './dopri5';
import { type FixedMethod, type OdeFunc, type SolverStats, explainNonFiniteFixed, fixedSolve, newStats } from './steppers';
import { scoped } from './scopes';
import { type HostVector, type VectorOps, defaultOps, isAllFinite, retain } from './vector-ops';

export type OdeMethod = FixedMethod | 'dopri5';

export interface OdeintOptions<V> {
  /** Default 'dopri5'. */
  method?: OdeMethod;
  /** Relative / absolute tolerances of dopri5 (torchdiffeq's defaults 1e-7 / 1e-9). */
  rtol?: number;
  atol?: number;
  /** Fixed methods: the largest step; each output interval is split into equal steps no longer than this. Default: one step per interval. */
  stepSize?: number;
  /** dopri5: the first step (default: Hairer's heuristic). */
  firstStep?: number;
  /** dopri5: give up with StepSizeUnderflowError when the controller proposes a step below this. */
  minStep?: number;
  /** Attempted steps (accepted + rejected) before TooManyStepsError; default 100 000. */
  maxSteps?: number;
  /** dopri5 controller: safety factor (0.9) and bounds on the per-step ratio (0.2, 10). */
  safety?: number;
  minFactor?: number;
  maxFactor?: number;
  /** The vector space of the state; default hostVectorOps (float64 host arrays). Required for any other V. */
  ops?: VectorOps<V>;
}

export interface OdeintResult<V> {
  /** ys[i] ≈ y(t[i]); fresh vectors owned by the caller (ys[0] is a copy of y0 where the ops can clone). */
  ys: V[];
  stats: SolverStats;
}

const METHODS: readonly OdeMethod[] = ['euler', 'heun', 'midpoint', 'rk4', 'dopri5'];

/** Options with defaults applied and checked; shared with solveTracked. */
export function resolveOptions<V>(
  o: OdeintOptions<V>,
  y0: V,
  where: string,
): { method: OdeMethod; ops: VectorOps<V>; dopri: Dopri5Options; stepSize?: number } {
  const method = o.method ?? 'dopri5';
  if (!METHODS.includes(method)) throw new InvalidArgumentError(`unknown ODE method '${String(method)}' (choose ${METHODS.join(', ')})`);
  const dopri: Dopri5Options = {
    rtol: o.rtol ?? 1e-7,
    atol: o.atol ?? 1e-9,
    firstStep: o.firstStep,
    minStep: o.minStep,
    maxSteps: o.maxSteps ?? 100_000,
    safety: o.safety ?? 0.9,
    minFactor: o.minFactor ?? 0.2,
    maxFactor: o.maxFactor ?? 10,
  };
  const positive = (name: string, v: number | undefined): void => {
    if (v !== undefined && !(v > 0 && Number.isFinite(v))) throw new InvalidArgumentError(`${name} must be a positive finite number, got ${v}`);
  };
  if (!(dopri.rtol >= 0) || !(dopri.atol >= 0) || dopri.rtol + dopri.atol === 0) {
    throw new InvalidArgumentError(`rtol and atol must be >= 0 and not both 0, got rtol=${dopri.rtol}, atol=${dopri.atol}`);
  }
  positive('stepSize', o.stepSize);
  positive('firstStep', o.firstStep);
  positive('minStep', o.minStep);
  if (!Number.isInteger(dopri.maxSteps) || dopri.maxSteps < 1) throw new InvalidArgumentError(`maxSteps must be a positive integer, got ${dopri.maxSteps}`);
  if (!(dopri.safety > 0 && dopri.safety <= 1)) throw new InvalidArgumentError(`safety must be in (0, 1], got ${dopri.safety}`);
  if (!(dopri.minFactor > 0 && dopri.minFactor < 1 && dopri.maxFactor > 1)) {
    throw new InvalidArgumentError(`need 0 < minFactor < 1 < maxFactor, got ${dopri.minFactor}, ${dopri.maxFactor}`);
  }
  return { method, ops: defaultOps(o.ops, y0, where), dopri, stepSize: o.stepSize };
}

/** Number of equal sub-steps of a fixed method over an interval of length `span` (tiny slack so 1/0.1 is 10, not 11). */
export function substeps(span: number, stepSize: number | undefined): number {
  return stepSize === undefined ? 1 : Math.max(1, Math.ceil(Math.abs(span) / stepSize - 1e-9));
}

/**
 * Solves dy/dt = f(t, y), y(t[0]) = y0 and returns the solution at every time in `t` (strictly increasing or
 * strictly decreasing), with the solver's counters.
 *
 * Differences from torchdiffeq, on purpose: fixed methods step exactly onto each output time (equal sub-steps of at
 * most `stepSize`) instead of interpolating from a global grid; dopri5 clips its last step onto t[-1] (as Hairer's
 * code does) and interpolates the outputs in between with its 4th-order dense output; the error measure is the
 * max-norm of err / (atol + rtol·max(|y0|, |y1|)) rather than an RMS.
 */
export async function odeintDetailed<V>(f: OdeFunc<V>, y0: V, t: readonly number[], options: OdeintOptions<V> = {}): Promise<OdeintResult<V>> {
  const { method, ops, dopri, stepSize } = resolveOptions(options, y0, 'odeint');
  if (t.length === 0) throw new InvalidArgumentError('odeint needs at least one time');
  if (!t.every(Number.isFinite)) throw new InvalidArgumentError(`odeint times must be finite, got [${t.join(', ')}]`);
  const dir = t.length > 1 && t[1] < t[0] ? -1 : 1;
  for (let i = 1; i < t.length; i++) {
    if (!((t[i] - t[i - 1]) * dir > 0)) throw new InvalidArgumentError(`odeint times must be strictly monotone, got [${t.join(', ')}]`);
  }
  const vs = scoped(ops);
  // Backward in time: solve s = −t forward with g(s, y) = −f(−s, y), so the integrators only know one direction.
  const g: OdeFunc<V> = dir === 1 ? f : async (s, y) => vs.scale(vs.own(await f(-s, y)), -1);
  const ts = dir === 1 ? t : t.map((x) => -x);
  const stats = newStats();
  try {
    const ys = await vs.scope(async () => {
      if (method === 'dopri5') {
        const tEnd = ts[ts.length - 1];
        return (await Dopri5Integrator.start(g, vs, dopri, stats, ts[0], y0, tEnd)).integrate(tEnd, ts);
      }
      const ys = [retain(vs, y0)];
      for (let i = 1; i < ts.length; i++) {
        const n = substeps(ts[i] - ts[i - 1], stepSize);
        if (stats.steps + n > dopri.maxSteps) throw new TooManyStepsError(ts[i - 1], dopri.maxSteps, ts[ts.length - 1]);
        ys.push(await fixedSolve(method, g, ts[i - 1], ys[i - 1], ts[i], n, vs, stats));
      }
      // Fixed steps never look at their values, so NaN would pass through silently. A non-finite value persists
      // to the last state (each step adds to the previous one), so one check at the end finds it (one readback).
      if (!(await isAllFinite(vs, ys[ys.length - 1]))) await explainFixedFailure(method, g, ts, ys, stepSize, vs);
      return ys;
    });
    return { ys, stats };
  } catch (e) {
    // Errors report times in the caller's direction.
    if (dir === -1 && e instanceof StepSizeUnderflowError) throw new StepSizeUnderflowError(-e.t, e.stepSize);
    if (dir === -1 && e instanceof TooManyStepsError) throw new TooManyStepsError(-e.t, e.maxSteps, -e.tEnd);
    if (dir === -1 && e instanceof NonFiniteDynamicsError) throw new NonFiniteDynamicsError(-e.t, e.stateNorm, e.detail);
    throw e;
  }
}

/**
 * The fixed-step solve ended non-finite: finds the first non-finite output (readbacks on this failure path only)
 * and replays the interval before it with every f evaluation checked. Always throws.
 */
async function explainFixedFailure<V>(
  method: FixedMethod,
  f: OdeFunc<V>,
  ts: readonly number[],
  ys: readonly V[],
  stepSize: number | undefined,
  ops: VectorOps<V>,
): Promise<never> {
  if (!(await isAllFinite(ops, ys[0]))) throw new InvalidArgumentError('odeint: the initial state y0 has NaN or infinite entries');
  let i = 1;
  while (i < ys.length - 1 && (await isAllFinite(ops, ys[i]))) i++;
  return await explainNonFiniteFixed(method, f, ts[i - 1], ys[i - 1], ts[i], substeps(ts[i] - ts[i - 1], stepSize), ops);
}

/** `odeint(f, y0, t, options)`: the solution at each time in t (see odeintDetailed). */
export async function odeint<V = HostVector>(f: OdeFunc<V>, y0: V, t: readonly number[], options: OdeintOptions<V> = {}): Promise<V[]> {
  return (await odeintDetailed(f, y0, t, options)).ys;
}
