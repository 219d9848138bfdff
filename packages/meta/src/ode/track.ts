/** @file Forward solve that tracks the states u(t_k) on a uniform grid, for the adjoint; optionally keeps only checkpoints and recomputes the rest. */
import { InvalidArgumentError } from '../errors';
import { Dopri5Integrator } from './dopri5';
import { type OdeMethod, type OdeintOptions, resolveOptions, substeps } from './odeint';
import { type FixedMethod, type OdeFunc, type SolverStats, checkedDynamics, explainNonFiniteFixed, fixedSolve, newStats } from './steppers';
import { type ScopedOps, scoped } from './scopes';
import { isAllFinite, release, retain } from './vector-ops';

export interface TrackOptions<V> extends OdeintOptions<V> {
  /** Number of grid intervals n (the grid has n + 1 states t_k = t0 + k·T/n). Give this or `h`. */
  nStates?: number;
  /** Grid step; n = T/h rounded to the nearest integer (the grid then divides T exactly). */
  h?: number;
  /** Start time (default 0); the grid runs over [t0, t0 + T]. */
  t0?: number;
  /**
   * Keep only every m-th state (and the last) and recompute the others from the nearest checkpoint when the adjoint
   * needs them: memory O(n/m + m) states instead of O(n), for one more forward solve. Default √n with `recompute`.
   */
  checkpointEvery?: number;
  /** Store checkpoints only (see checkpointEvery) instead of every state. */
  recompute?: boolean;
}

export interface TrackedSolution<V> {
  /** The n + 1 grid times. */
  times: number[];
  /** states[k] = u(t_k) where kept (all of them unless checkpointing), else undefined. Owned by this object. */
  states: (V | undefined)[];
  /** u(T) (= states[n]). */
  final: V;
  /** Spacing of kept states in grid steps (1: all kept). */
  checkpointEvery: number;
  method: OdeMethod;
  /** Forward-solve counters; recomputation adds to `recomputeStats`. */
  stats: SolverStats;
  recomputeStats: SolverStats;
  /**
   * Fresh copies of u(t_k) for k0..k1, re-solved from the kept state k0 exactly as the forward pass did (same step
   * sequence, so bit-identical for a deterministic f). They belong to the caller's current scope (or the caller).
   */
  recompute(k0: number, k1: number): Promise<V[]>;
  /** Releases the kept states. */
  dispose(): void;
}

/**
 * Solves du/dt = f(t, u) over [t0, t0 + T] and tracks u on an n-interval grid. dopri5 integrates from grid point
 * to grid point (landing on each, carrying its step size across, so any stretch is reproducible from its start);
 * a fixed method takes `substeps(T/n, stepSize)` equal steps per interval (one by default).
 */
export async function solveTracked<V>(f: OdeFunc<V>, y0: V, T: number, options: TrackOptions<V> = {}): Promise<TrackedSolution<V>> {
  const { method, ops, dopri, stepSize } = resolveOptions(options, y0, 'solveTracked');
  if (!(T > 0 && Number.isFinite(T))) throw new InvalidArgumentError(`solveTracked: T must be a positive finite time, got ${T}`);
  if ((options.nStates === undefined) === (options.h === undefined)) throw new InvalidArgumentError('solveTracked: give exactly one of nStates and h');
  const n = options.nStates ?? Math.max(1, Math.round(T / options.h!));
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`solveTracked: nStates must be a positive integer, got ${n}`);
  if (options.h !== undefined && !(options.h > 0)) throw new InvalidArgumentError(`solveTracked: h must be positive, got ${options.h}`);
  const every = options.checkpointEvery ?? (options.recompute ? Math.max(1, Math.round(Math.sqrt(n))) : 1);
  if (!Number.isInteger(every) || every < 1) throw new InvalidArgumentError(`checkpointEvery must be a positive integer, got ${every}`);
  const t0 = options.t0 ?? 0;
  // From the index, so t_n is exactly t0 + T and recomputation sees identical times.
  const times = Array.from({ length: n + 1 }, (_, k) => (k === n ? t0 + T : t0 + (k * T) / n));
  const kept = (k: number): boolean => k % every === 0 || k === n;
  /** dopri5's proposed step on first arriving at each kept state: with the state, all a restart needs. */
  const hints: number[] = new Array(n + 1).fill(NaN);
  const stats = newStats();
  const recomputeStats = newStats();
  const vs = scoped(ops);

  /**
   * Integrates from u(t_k0) to t_k1 and returns the grid states k0+1..k1 that `want` asks for (fresh vectors, in
   * the current scope). dopri5 lands on every grid time and notes its proposed step there, so a restart from a
   * kept state repeats what follows.
   */
  async function run(k0: number, k1: number, u0: V, s: SolverStats, want: (k: number) => boolean): Promise<Map<number, V>> {
    const out = new Map<number, V>();
    if (method === 'dopri5') {
      const integ = await Dopri5Integrator.start(f, vs, Number.isNaN(hints[k0]) ? dopri : { ...dopri, firstStep: hints[k0] }, s, times[k0], u0, times[k1]);
      for (let k = k0 + 1; k <= k1; k++) {
        const [landed] = await integ.integrate(times[k], want(k) ? [times[k]] : []);
        if (landed === undefined) continue;
        out.set(k, landed);
        if (Number.isNaN(hints[k])) hints[k] = integ.h;
      }
      return out;
    }
    // The fixed steps carry the current state and the states kept so far, so only unwanted states are freed.
    let carried = { u: u0, out };
    for (let k = k0 + 1; k <= k1; k++) {
      carried = await vs.carry(carried, async ({ u }) => {
        const next = await fixedSolve(method, f, times[k - 1], u, times[k], substeps(times[k] - times[k - 1], stepSize), vs, s);
        if (want(k)) out.set(k, next);
        return { u: next, out };
      });
    }
    return out;
  }

  return vs.scope(async () => {
    const states: (V | undefined)[] = new Array(n + 1).fill(undefined);
    states[0] = retain(vs, y0);
    for (const [k, u] of await run(0, n, y0, stats, kept)) states[k] = u;
    // Fixed steps never look at their values: one check of u(T) (a readback) catches NaN/Inf, which persists.
    if (method !== 'dopri5' && !(await isAllFinite(vs, states[n]!))) {
      await explainTrackedFailure(method, f, times, states, (k) => substeps(times[k] - times[k - 1], stepSize), vs);
    }
    const solution: TrackedSolution<V> = {
      times,
      states,
      final: states[n]!,
      checkpointEvery: every,
      method,
      stats,
      recomputeStats,
      async recompute(k0, k1) {
        if (!(Number.isInteger(k0) && Number.isInteger(k1) && 0 <= k0 && k0 <= k1 && k1 <= n)) {
          throw new InvalidArgumentError(`recompute(${k0}, ${k1}): need integers 0 <= k0 <= k1 <= ${n}`);
        }
        const start = states[k0];
        if (start === undefined) throw new InvalidArgumentError(`recompute(${k0}, ${k1}): state ${k0} is not a kept checkpoint (every ${every})`);
        // A fresh budget per call: maxSteps bounds one stretch, as it bounded the forward pass.
        const s = newStats();
        try {
          return await vs.scope(async () => [retain(vs, start), ...(await run(k0, k1, start, s, () => true)).values()]);
        } finally {
          recomputeStats.nfe += s.nfe;
          recomputeStats.steps += s.steps;
          recomputeStats.rejected += s.rejected;
        }
      },
      dispose() {
        release(ops, ...states);
        states.fill(undefined);
      },
    };
    return solution;
  });
}

/**
 * A fixed-step tracked solve ended non-finite: finds the first non-finite kept state (readbacks on this failure
 * path only) and replays the grid intervals from the kept state before it with every f evaluation checked, so the
 * error names the time where f returned NaN/Inf (or the interval whose steps overflowed). Always throws.
 */
async function explainTrackedFailure<V>(
  method: FixedMethod,
  f: OdeFunc<V>,
  times: readonly number[],
  states: readonly (V | undefined)[],
  steps: (k: number) => number,
  vs: ScopedOps<V>,
): Promise<never> {
  if (!(await isAllFinite(vs, states[0]!))) throw new InvalidArgumentError('solveTracked: the initial state y0 has NaN or infinite entries');
  let from = 0;
  for (let k = 1; k < states.length; k++) {
    if (states[k] === undefined) continue;
    if (!(await isAllFinite(vs, states[k]!))) break;
    from = k;
  }
  const checked = checkedDynamics(f, vs);
  return vs.scope(async () => {
    let u: V = states[from]!;
    for (let k = from + 1; k < times.length; k++) {
      u = await vs.carry(u, async (prev) => {
        const next = await fixedSolve(method, checked, times[k - 1], prev, times[k], steps(k), vs, newStats());
        if (!(await isAllFinite(vs, next))) await explainNonFiniteFixed(method, f, times[k - 1], prev, times[k], steps(k), vs);
        return next;
      });
    }
    throw new InvalidArgumentError('solveTracked: the final state was not finite, but replaying the solve gave finite states (is f deterministic?)');
  });
}
