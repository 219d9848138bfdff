/** @file The right-hand-side type, solver statistics, and the fixed-step explicit Runge–Kutta steps (Euler, Heun, midpoint, RK4). */
import { type VectorOps, linComb, release } from './vector-ops';

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

/** Evaluates f and counts it. */
export async function evalF<V>(f: OdeFunc<V>, t: number, y: V, stats: SolverStats): Promise<V> {
  stats.nfe++;
  return await f(t, y);
}

/** One step of a fixed explicit method from (t, y) with step h; returns the new state and releases the stages. */
export async function fixedStep<V>(
  method: FixedMethod, f: OdeFunc<V>, t: number, y: V, h: number, ops: VectorOps<V>, stats: SolverStats,
): Promise<V> {
  stats.steps++;
  const k1 = await evalF(f, t, y, stats);
  switch (method) {
    case 'euler': {
      const y1 = ops.axpy(h, k1, y);
      release(ops, k1);
      return y1;
    }
    case 'heun': {
      // Explicit trapezoid ("modified Euler"): predictor Euler, corrector averages the slopes.
      const yp = ops.axpy(h, k1, y);
      const k2 = await evalF(f, t + h, yp, stats);
      const y1 = linComb(ops, y, [[h / 2, k1], [h / 2, k2]]);
      release(ops, k1, yp, k2);
      return y1;
    }
    case 'midpoint': {
      const ym = ops.axpy(h / 2, k1, y);
      const k2 = await evalF(f, t + h / 2, ym, stats);
      const y1 = ops.axpy(h, k2, y);
      release(ops, k1, ym, k2);
      return y1;
    }
    case 'rk4': {
      const y2 = ops.axpy(h / 2, k1, y);
      const k2 = await evalF(f, t + h / 2, y2, stats);
      const y3 = ops.axpy(h / 2, k2, y);
      const k3 = await evalF(f, t + h / 2, y3, stats);
      const y4 = ops.axpy(h, k3, y);
      const k4 = await evalF(f, t + h, y4, stats);
      const y1 = linComb(ops, y, [[h / 6, k1], [h / 3, k2], [h / 3, k3], [h / 6, k4]]);
      release(ops, k1, y2, k2, y3, k3, y4, k4);
      return y1;
    }
  }
}

/**
 * Integrates from (t0, y0) to t1 with `n` equal steps of a fixed method, landing exactly on t1. Returns a fresh
 * vector (y0 stays the caller's).
 */
export async function fixedSolve<V>(
  method: FixedMethod, f: OdeFunc<V>, t0: number, y0: V, t1: number, n: number, ops: VectorOps<V>, stats: SolverStats,
): Promise<V> {
  const h = (t1 - t0) / n;
  let y = y0;
  for (let i = 0; i < n; i++) {
    // Times from the index, not by accumulation, so the last step ends on t1 without drift.
    const t = i === 0 ? t0 : t0 + i * h;
    const y1 = await fixedStep(method, f, t, y, i === n - 1 ? t1 - t : h, ops, stats);
    if (y !== y0) release(ops, y);
    y = y1;
  }
  return y === y0 ? linComb(ops, y0, []) : y;
}
