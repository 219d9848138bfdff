/** @file The right-hand-side type, solver statistics, and the fixed-step explicit Runge–Kutta steps (Euler, Heun, midpoint, RK4). */
import { NonFiniteDynamicsError } from '../errors';
import { scoped } from './scopes';
import { type VectorOps, isAllFinite, linComb, normForMessage } from './vector-ops';

/** dy/dt = f(t, y). May return a promise (a GPU gradient that reads a scalar back, say). The result is owned by the solver. */
export type OdeFunc<V> = (t: number, y: V) => V | Promise<V>;

/** Counters a solve fills in; `nfe` is the figure that costs time (one gradient per evaluation in gradient flow). */
export interface SolverStats {
  /** Right-hand-side evaluations, including those of the first-step heuristic. */
  nfe: number;
  /** Accepted steps. */
  steps: number;
  /** Rejected adaptive steps. */
  rejected: number;
}

export const newStats = (): SolverStats => ({ nfe: 0, steps: 0, rejected: 0 });

export type FixedMethod = 'euler' | 'heun' | 'midpoint' | 'rk4';

/** Global order of accuracy of each fixed method (the tests check these). */
export const FIXED_ORDER: Record<FixedMethod, number> = { euler: 1, heun: 2, midpoint: 2, rk4: 4 };

/** Evaluates f and counts it; the result is the solver's, released with the scope it was made in. */
export async function evalF<V>(f: OdeFunc<V>, t: number, y: V, stats: SolverStats, ops: VectorOps<V>): Promise<V> {
  stats.nfe++;
  return scoped(ops).own(await f(t, y));
}

/** One step of a fixed explicit method from (t, y) with step h: the new state (the stages are freed). */
export async function fixedStep<V>(method: FixedMethod, f: OdeFunc<V>, t: number, y: V, h: number, ops: VectorOps<V>, stats: SolverStats): Promise<V> {
  stats.steps++;
  const vs = scoped(ops);
  const F = (tt: number, yy: V): Promise<V> => evalF(f, tt, yy, stats, vs);
  return vs.scope(async () => {
    const k1 = await F(t, y);
    switch (method) {
      case 'euler':
        return vs.axpy(h, k1, y);
      case 'heun': {
        // Explicit trapezoid ("modified Euler"): predictor Euler, corrector averages the slopes.
        const k2 = await F(t + h, vs.axpy(h, k1, y));
        return linComb(vs, y, [
          [h / 2, k1],
          [h / 2, k2],
        ]);
      }
      case 'midpoint': {
        const k2 = await F(t + h / 2, vs.axpy(h / 2, k1, y));
        return vs.axpy(h, k2, y);
      }
      case 'rk4': {
        const k2 = await F(t + h / 2, vs.axpy(h / 2, k1, y));
        const k3 = await F(t + h / 2, vs.axpy(h / 2, k2, y));
        const k4 = await F(t + h, vs.axpy(h, k3, y));
        return linComb(vs, y, [
          [h / 6, k1],
          [h / 3, k2],
          [h / 3, k3],
          [h / 6, k4],
        ]);
      }
    }
  });
}

/**
 * Integrates from (t0, y0) to t1 with `n` ≥ 1 equal steps of a fixed method, landing exactly on t1. Returns a fresh
 * vector (y0 stays the caller's).
 */
export async function fixedSolve<V>(
  method: FixedMethod,
  f: OdeFunc<V>,
  t0: number,
  y0: V,
  t1: number,
  n: number,
  ops: VectorOps<V>,
  stats: SolverStats,
): Promise<V> {
  const vs = scoped(ops);
  const h = (t1 - t0) / n;
  return vs.scope(async () => {
    let y = y0;
    // Times from the index, not by accumulation, so the last step ends on t1 without drift.
    for (let i = 0; i < n; i++) {
      const t = i === 0 ? t0 : t0 + i * h;
      y = await vs.carry(y, (yi) => fixedStep(method, f, t, yi, i === n - 1 ? t1 - t : h, vs, stats));
    }
    return y;
  });
}

/** f wrapped to throw NonFiniteDynamicsError (t, ‖y‖) when it returns a non-finite value: a readback per call, so failure paths only. */
export function checkedDynamics<V>(f: OdeFunc<V>, ops: VectorOps<V>): OdeFunc<V> {
  const vs = scoped(ops);
  return async (t, y) => {
    const out = vs.own(await f(t, y));
    if (!(await isAllFinite(ops, out))) throw new NonFiniteDynamicsError(t, await normForMessage(ops, y));
    return out;
  };
}

/**
 * After a fixed-step solve from (t0, y0) (finite) to t1 ended non-finite: replays it with every f evaluation
 * checked, so the error names the first t where f returned NaN/Inf. If every evaluation was finite, the steps
 * themselves overflowed, and the error says so. Always throws NonFiniteDynamicsError.
 */
export async function explainNonFiniteFixed<V>(
  method: FixedMethod,
  f: OdeFunc<V>,
  t0: number,
  y0: V,
  t1: number,
  n: number,
  ops: VectorOps<V>,
): Promise<never> {
  return scoped(ops).scope(async () => {
    await fixedSolve(method, checkedDynamics(f, ops), t0, y0, t1, n, ops, newStats());
    throw new NonFiniteDynamicsError(
      t1,
      await normForMessage(ops, y0),
      `f stayed finite at every stage of the ${n} ${method} step(s) into this time, so the steps overflowed; use a smaller stepSize`,
    );
  });
}
