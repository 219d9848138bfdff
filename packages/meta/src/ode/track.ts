/** @file Forward solve that tracks the states u(t_k) on a uniform grid, for the adjoint; optionally keeps only checkpoints and recomputes the rest. */
import { InvalidArgumentError } from '../errors';
import { Dopri5Integrator } from './dopri5';
import { type OdeMethod, type OdeintOptions, resolveOptions, substeps } from './odeint';
import { type FixedMethod, type OdeFunc, type SolverStats, checkedDynamics, explainNonFiniteFixed, fixedSolve, newStats } from './steppers';
import { type VectorOps, isAllFinite, release, retain } from './vector-ops';

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
   * sequence, so bit-identical for a deterministic f). The caller releases them.
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
  const states: (V | undefined)[] = new Array(n + 1).fill(undefined);
  /** dopri5's proposed step on arriving at each kept state: with the state, all a restart needs. */
  const hints: number[] = new Array(n + 1).fill(NaN);
  const stats = newStats();
  const recomputeStats = newStats();

  /** Integrates grid states k0+1..k1 from u(t_k0) and hands each to `visit` (which owns it). */
  async function run(k0: number, k1: number, u0: V, s: SolverStats, visit: (k: number, u: V, hint: number) => void): Promise<void> {
    if (method === 'dopri5') {
      const opts = Number.isNaN(hints[k0]) ? dopri : { ...dopri, firstStep: hints[k0] };
      const integ = await Dopri5Integrator.start(f, ops, opts, s, times[k0], u0, times[k1]);
      try {
        for (let k = k0 + 1; k <= k1; k++) {
          let landed: V | undefined;
          await integ.integrate(times[k], [times[k]], (_i, u) => (landed = u));
          // The proposal is read after the landing step, so a restart from here repeats what follows.
          visit(k, landed!, integ.h);
        }
      } finally {
        integ.dispose();
      }
      return;
    }
    let u = u0;
    for (let k = k0 + 1; k <= k1; k++) {
      const next = await fixedSolve(method, f, times[k - 1], u, times[k], substeps(times[k] - times[k - 1], stepSize), ops, s);
      visit(k, next, NaN);
      u = next;
    }
  }

  states[0] = retain(ops, y0);
  // The integrator reads each state while producing the next, so release non-kept states one step late.
  let pending: V | undefined;
  try {
    await run(0, n, y0, stats, (k, u, hint) => {
      if (pending !== undefined) release(ops, pending);
      pending = undefined;
      if (kept(k)) {
        states[k] = u;
        hints[k] = hint;
      } else if (method === 'dopri5') {
        release(ops, u); // dopri5 keeps its own copy of the current state
      } else {
        pending = u; // the fixed loop steps from it next
      }
    });
    // Fixed steps never look at their values: one check of u(T) (a readback) catches NaN/Inf, which persists.
    if (method !== 'dopri5' && !(await isAllFinite(ops, states[n]!))) {
      await explainTrackedFailure(method, f, times, states, (k) => substeps(times[k] - times[k - 1], stepSize), ops);
    }
  } catch (e) {
    release(ops, pending, ...states);
    throw e;
  }
  release(ops, pending);

  return {
    times, states, final: states[n]!, checkpointEvery: every, method, stats, recomputeStats,
    async recompute(k0, k1) {
      if (!(Number.isInteger(k0) && Number.isInteger(k1) && 0 <= k0 && k0 <= k1 && k1 <= n)) {
        throw new InvalidArgumentError(`recompute(${k0}, ${k1}): need integers 0 <= k0 <= k1 <= ${n}`);
      }
      const start = states[k0];
      if (start === undefined) throw new InvalidArgumentError(`recompute(${k0}, ${k1}): state ${k0} is not a kept checkpoint (every ${every})`);
      const out: V[] = [retain(ops, start)];
      // A fresh budget per call: maxSteps bounds one stretch, as it bounded the forward pass.
      const s = newStats();
      try {
        await run(k0, k1, start, s, (_k, u) => out.push(u));
      } catch (e) {
        release(ops, ...out);
        throw e;
      } finally {
        recomputeStats.nfe += s.nfe;
        recomputeStats.steps += s.steps;
        recomputeStats.rejected += s.rejected;
      }
      return out;
    },
    dispose() {
      release(ops, ...states);
      states.fill(undefined);
    },
  };
}


/**
 * A fixed-step tracked solve ended non-finite: finds the first non-finite kept state (readbacks on this failure
 * path only) and replays the grid intervals from the kept state before it with every f evaluation checked, so the
 * error names the time where f returned NaN/Inf (or the interval whose steps overflowed). Always throws.
 */
async function explainTrackedFailure<V>(
  method: FixedMethod, f: OdeFunc<V>, times: readonly number[], states: readonly (V | undefined)[], steps: (k: number) => number, ops: VectorOps<V>,
): Promise<never> {
  if (!(await isAllFinite(ops, states[0]!))) throw new InvalidArgumentError('solveTracked: the initial state y0 has NaN or infinite entries');
  let from = 0;
  for (let k = 1; k < states.length; k++) {
    if (states[k] === undefined) continue;
    if (!(await isAllFinite(ops, states[k]!))) break;
    from = k;
  }
  const checked = checkedDynamics(f, ops);
  let u: V = states[from]!;
  try {
    for (let k = from + 1; k < times.length; k++) {
      const next = await fixedSolve(method, checked, times[k - 1], u, times[k], steps(k), ops, newStats());
      if (!(await isAllFinite(ops, next))) {
        release(ops, next);
        await explainNonFiniteFixed(method, f, times[k - 1], u, times[k], steps(k), ops);
      }
      if (u !== states[from]) release(ops, u);
      u = next;
    }
  } finally {
    if (u !== states[from]) release(ops, u);
  }
  throw new InvalidArgumentError('solveTracked: the final state was not finite, but replaying the solve gave finite states (is f deterministic?)');
}
