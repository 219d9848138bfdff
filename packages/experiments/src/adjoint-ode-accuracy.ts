/** @file Experiment E6 `adjoint-ode-accuracy`: accuracy of the Heun/Euler adjoint and of backprop through Euler vs tracked states (A-MAML paper, Appendix A). */
import { type HostVector, type OdeFunc, type VectorOps, adjointGradient, float32VectorOps, release, solveTracked } from '@metagrad/meta';

/**
 * dy/dt = −2t³ − 2t·y, y(t) = 1 − t² + (y0 − 1)e^{−t²}; L = (y(T) − 3)⁶; dL/dy0 = 6(y(T) − 3)⁵ e^{−T²}.
 * ∂f/∂y = −2t depends on t, so an adjoint that evaluates its VJP at the wrong time shows up in the error.
 */
const Y0 = 2;
const exactY = (t: number): number => 1 - t * t + (Y0 - 1) * Math.exp(-t * t);
export const exactGradient = (T: number): number => 6 * (exactY(T) - 3) ** 5 * Math.exp(-T * T);

export type AdjointOdeMethod = 'adjoint-heun' | 'adjoint-euler' | 'backprop-euler';
export interface AdjointOdeRow {
  method: AdjointOdeMethod;
  T: number;
  states: number;
  relError: number;
}
export interface AdjointOdeResult {
  rows: AdjointOdeRow[];
}

/**
 * Where the vectors live. Everything the experiment does to a state goes through `ops`; only the scalar loss
 * gradient crosses to the host. The GPU variant (later) is another backend object — one line in the caller.
 */
export interface E6Backend<V> {
  ops: VectorOps<V>;
  fromHost(values: number[]): V;
  toHost(v: V): Promise<number[]>;
}

/** Float32 on the host, rounding at every operation: the same precision floor as the GPU. */
export const float32HostBackend: E6Backend<HostVector> = {
  ops: float32VectorOps,
  fromHost: (values) => Float32Array.from(values),
  toHost: async (v) => Array.from(v),
};

const f32 = Math.fround;

/** The problem in terms of a backend: f, the VJP (∂f/∂y)ᵀλ = −2tλ, and ∂L/∂y(T), all in f32 arithmetic. */
function problem<V>(backend: E6Backend<V>) {
  const { ops } = backend;
  const ones = backend.fromHost([1]);
  const f: OdeFunc<V> = (t, y) => {
    const t32 = f32(t);
    // Scalar coefficients as a f32 device would compute them from a f32 t, rounding each operation.
    const c = f32(-2 * f32(f32(t32 * t32) * t32));
    const base = ops.scale(ones, c);
    const out = ops.axpy(f32(-2 * t32), y, base);
    release(ops, base);
    return out;
  };
  const vjpF = (_u: V, t: number, lambda: V): V => ops.scale(lambda, f32(-2 * f32(t)));
  const lossGrad = async (yT: V): Promise<V> => {
    const d = f32((await backend.toHost(yT))[0] - 3);
    const d2 = f32(d * d);
    return backend.fromHost([f32(6 * f32(f32(d2 * d2) * d))]);
  };
  return { f, vjpF, lossGrad, dispose: () => release(ops, ones) };
}

/** The three estimates of dL/dy0 at one (T, n). */
export async function estimateGradients<V>(backend: E6Backend<V>, T: number, n: number): Promise<Record<AdjointOdeMethod, number>> {
  const { ops } = backend;
  const p = problem(backend);
  const y0 = backend.fromHost([Y0]);
  const out = {} as Record<AdjointOdeMethod, number>;
  try {
    // Adjoint: dopri5 forward tracking n + 1 states, then the backward sweep over them.
    const traj = await solveTracked(p.f, y0, T, { nStates: n, method: 'dopri5', rtol: 1e-6, atol: 1e-8, ops });
    const dJ = await p.lossGrad(traj.final);
    for (const method of ['heun', 'euler'] as const) {
      const { gradient } = await adjointGradient({ trajectory: traj, dJdUT: dJ, vjpF: p.vjpF, method, ops });
      out[`adjoint-${method}`] = (await backend.toHost(gradient))[0];
      release(ops, gradient);
    }
    release(ops, dJ);
    traj.dispose();

    // Backprop through an n-step Euler unroll: exact reverse mode of y_{k+1} = y_k + h·f(t_k, y_k), i.e.
    // ȳ_k = ȳ_{k+1} + h·(∂f/∂y(t_k))ᵀȳ_{k+1} — the VJP at the step's start, where the continuous adjoint's Euler uses its end.
    const euler = await solveTracked(p.f, y0, T, { nStates: n, method: 'euler', ops });
    let bar: V = await p.lossGrad(euler.final);
    for (let k = n - 1; k >= 0; k--) {
      const g = p.vjpF(euler.states[k]!, euler.times[k], bar);
      const next = ops.axpy(euler.times[k + 1] - euler.times[k], g, bar);
      release(ops, g, bar);
      bar = next;
    }
    out['backprop-euler'] = (await backend.toHost(bar))[0];
    release(ops, bar);
    euler.dispose();
  } finally {
    release(ops, y0);
    p.dispose();
  }
  return out;
}

export const E6_FULL = { Ts: [0.1, 0.5, 1, 2], states: [10, 20, 50, 100, 200, 500, 1000] };
export const E6_QUICK = { Ts: [0.5, 1], states: [10, 100] };

/** Runs the grid; relError = |estimate − exact| / |exact| against the closed form (float64). */
export async function runAdjointOdeAccuracy(
  { quick = false, onCell }: { quick?: boolean; onCell?: (cellRows: AdjointOdeRow[]) => void } = {},
  backend: E6Backend<HostVector> = float32HostBackend,
): Promise<AdjointOdeResult> {
  const grid = quick ? E6_QUICK : E6_FULL;
  const rows: AdjointOdeRow[] = [];
  for (const T of grid.Ts) {
    const exact = exactGradient(T);
    for (const n of grid.states) {
      const est = await estimateGradients(backend, T, n);
      const cell = (['adjoint-heun', 'adjoint-euler', 'backprop-euler'] as const).map((method) => ({
        method,
        T,
        states: n,
        relError: Math.abs(est[method] - exact) / Math.abs(exact),
      }));
      rows.push(...cell);
      onCell?.(cell);
    }
  }
  return { rows };
}

/** Markdown table: one line per (T, states), one column per method, as the paper's Table 4. */
export function formatAdjointOdeTable(result: AdjointOdeResult): string {
  const methods: AdjointOdeMethod[] = ['adjoint-heun', 'adjoint-euler', 'backprop-euler'];
  const keys = [...new Set(result.rows.map((r) => `${r.T}|${r.states}`))];
  const lines = ['| T | states | Heun adjoint | Euler adjoint | backprop through Euler |', '|---:|---:|---:|---:|---:|'];
  for (const key of keys) {
    const [T, states] = key.split('|').map(Number);
    const cells = methods.map((m) => {
      const row = result.rows.find((r) => r.T === T && r.states === states && r.method === m);
      return row ? row.relError.toExponential(2) : '—';
    });
    lines.push(`| ${T} | ${states} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}
