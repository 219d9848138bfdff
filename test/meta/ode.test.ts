/** @file Tests of odeint, solveTracked and adjointGradient on problems with closed forms, and the E6 quick-run goals. */
import { describe, expect, it } from 'vitest';
import {
  type HostVector,
  type OdeFunc,
  StepSizeUnderflowError,
  TooManyStepsError,
  adjointGradient,
  float32VectorOps,
  odeint,
  odeintDetailed,
  solveTracked,
} from '@metagrad/meta';
import { InvalidArgumentError } from '@metagrad/tensor';
import { runAdjointOdeAccuracy } from '@metagrad/experiments/node';
import { countingOps } from './counting-ops';

const vec = (...xs: number[]): Float64Array => Float64Array.from(xs);

/** E6's ODE in float64: y' = −2t³ − 2ty, y = 1 − t² + (y0 − 1)e^{−t²} (t-dependent, nonlinear in t). */
const cubic: OdeFunc<HostVector> = (t, y) => vec(-2 * t ** 3 - 2 * t * y[0]);
const cubicExact = (t: number, y0 = 2): number => 1 - t * t + (y0 - 1) * Math.exp(-t * t);

/** Damped rotation u' = A u, A = [[a, b], [−b, a]]: u(t) = e^{at} R(−bt) u0. */
const a = -0.5;
const b = 2;
const rot: OdeFunc<HostVector> = (_t, u) => vec(a * u[0] + b * u[1], -b * u[0] + a * u[1]);
const rotExact = (t: number, u0: number[]): number[] => {
  const s = Math.exp(a * t);
  return [s * (Math.cos(b * t) * u0[0] + Math.sin(b * t) * u0[1]), s * (-Math.sin(b * t) * u0[0] + Math.cos(b * t) * u0[1])];
};

const maxErr = (x: HostVector, y: number[]): number => Math.max(...y.map((v, i) => Math.abs(x[i] - v)));

/** Observed order from errors at step counts n and 2n. */
const order = (e1: number, e2: number): number => Math.log2(e1 / e2);

describe('odeint: fixed-step orders of convergence', () => {
  const cases = [
    ['euler', 1],
    ['heun', 2],
    ['midpoint', 2],
    ['rk4', 4],
  ] as const;
  for (const [method, p] of cases) {
    it(`${method} converges with order ${p}`, async () => {
      const errs: number[] = [];
      for (const n of [20, 40, 80]) {
        const ys = await odeint(cubic, [2], [0, 1], { method, stepSize: 1 / n });
        errs.push(Math.abs(ys[1][0] - cubicExact(1)));
      }
      expect(order(errs[0], errs[1])).toBeGreaterThan(p - 0.2);
      expect(order(errs[1], errs[2])).toBeGreaterThan(p - 0.15);
      expect(order(errs[1], errs[2])).toBeLessThan(p + 0.3);
    });
  }

  it('steps onto every output time, with stepSize splitting each interval', async () => {
    const t = [0, 0.25, 0.5, 1, 2];
    const { ys, stats } = await odeintDetailed(rot, [1, 0], t, { method: 'rk4', stepSize: 0.05 });
    expect(ys).toHaveLength(5);
    expect(stats.steps).toBe(40);
    t.forEach((ti, i) => expect(maxErr(ys[i], rotExact(ti, [1, 0]))).toBeLessThan(1e-5));
  });
});

describe('odeint: dopri5', () => {
  it('reaches the requested tolerance, with fewer steps when it is looser', async () => {
    const t = [0, 0.3, 1, 2.5, 4];
    let prevSteps = Infinity;
    let prevErr = 0;
    for (const rtol of [1e-9, 1e-7, 1e-5, 1e-3]) {
      const { ys, stats } = await odeintDetailed(rot, [1, 0.5], t, { rtol, atol: rtol * 1e-2 });
      const err = Math.max(...t.map((ti, i) => maxErr(ys[i], rotExact(ti, [1, 0.5]))));
      expect(err).toBeLessThan(10 * rtol);
      expect(stats.steps).toBeLessThan(prevSteps);
      expect(err).toBeGreaterThan(prevErr);
      prevSteps = stats.steps;
      prevErr = err;
    }
  });

  it('keeps the global error near rtol on the t-dependent E6 problem', async () => {
    for (const rtol of [1e-6, 1e-8, 1e-10]) {
      const ys = await odeint(cubic, [2], [0, 0.5, 1, 2], { rtol, atol: rtol * 1e-2 });
      expect(Math.abs(ys[3][0] - cubicExact(2))).toBeLessThan(20 * rtol);
    }
  });

  it('dense output between steps is accurate and outputs at step ends are exact copies', async () => {
    const t = Array.from({ length: 101 }, (_, i) => (i * 3) / 100);
    const { ys, stats } = await odeintDetailed(rot, [1, 0], t, { rtol: 1e-8, atol: 1e-10 });
    expect(stats.steps).toBeLessThan(100); // the outputs did not force steps
    t.forEach((ti, i) => expect(maxErr(ys[i], rotExact(ti, [1, 0]))).toBeLessThan(1e-7));
  });

  it('integrates backward in time for decreasing t', async () => {
    const fwd = await odeint(rot, [1, 0], [0, 1], { rtol: 1e-10, atol: 1e-12 });
    const back = await odeint(rot, fwd[1], [1, 0.5, 0], { rtol: 1e-10, atol: 1e-12 });
    expect(maxErr(back[1], rotExact(0.5, [1, 0]))).toBeLessThan(1e-8);
    expect(maxErr(back[2], [1, 0])).toBeLessThan(1e-8);
  });

  it('rejects steps and recovers on a problem with a fast transient', async () => {
    // y' = −50(y − cos t): the initial layer forces small steps, then steps grow.
    const f: OdeFunc<HostVector> = (t, y) => vec(-50 * (y[0] - Math.cos(t)));
    const { ys, stats } = await odeintDetailed(f, [0], [0, 1], { rtol: 1e-6, atol: 1e-9, firstStep: 0.5 });
    expect(stats.rejected).toBeGreaterThan(0);
    const exact = (t: number): number => (2500 * Math.cos(t) + 50 * Math.sin(t) - 2500 * Math.exp(-50 * t)) / 2501;
    expect(Math.abs(ys[1][0] - exact(1))).toBeLessThan(1e-5);
  });

  it('throws StepSizeUnderflowError with the time reached at a blow-up', async () => {
    // y' = y², y(0) = 1: y = 1/(1 − t) blows up at t = 1.
    const err = await odeint((_t, y) => vec(y[0] * y[0]), vec(1), [0, 2], {
      rtol: 1e-6,
      atol: 1e-9,
      minStep: 1e-8,
    }).catch((e) => e);
    expect(err).toBeInstanceOf(StepSizeUnderflowError);
    expect(err.t).toBeGreaterThan(0.99);
    expect(err.t).toBeLessThan(1.01);
    expect(err.message).toMatch(/underflow at t = /);
  });

  it('throws StepSizeUnderflowError when stiffness pushes the step below minStep', async () => {
    const f: OdeFunc<HostVector> = (t, y) => vec(-1e4 * (y[0] - Math.cos(t)));
    await expect(odeint(f, [1], [0, 1], { minStep: 1e-2 })).rejects.toBeInstanceOf(StepSizeUnderflowError);
  });

  it('throws TooManyStepsError with the time reached, for dopri5 and fixed methods', async () => {
    const e1 = await odeint(rot, [1, 0], [0, 100], { maxSteps: 5 }).catch((e) => e);
    expect(e1).toBeInstanceOf(TooManyStepsError);
    expect(e1.t).toBeGreaterThan(0);
    expect(e1.t).toBeLessThan(100);
    expect(e1.tEnd).toBe(100);
    const e2 = await odeint(rot, [1, 0], [0, 1, 2], { method: 'euler', stepSize: 0.01, maxSteps: 150 }).catch((e) => e);
    expect(e2).toBeInstanceOf(TooManyStepsError);
    expect(e2.t).toBe(1);
    const e3 = await odeint(rot, [1, 0], [0, -100], { maxSteps: 5 }).catch((e) => e);
    expect(e3.t).toBeLessThan(0); // reported in the caller's time direction
  });

  it('rejects bad options with InvalidArgumentError', async () => {
    await expect(odeint(rot, [1, 0], [0, 1], { method: 'rk45' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(odeint(rot, [1, 0], [0, 1, 0.5])).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(odeint(rot, [1, 0], [0, 1], { rtol: 0, atol: 0 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(odeint(rot, [1, 0], [0, 1], { method: 'rk4', stepSize: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(odeint(rot, [1, 0], [])).rejects.toBeInstanceOf(InvalidArgumentError);
    // Non-host states without their VectorOps would be silently mangled by the host default.
    await expect(odeint(rot as never, { w: 1 } as never, [0, 1])).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it("releases everything it creates and never the caller's vectors", async () => {
    for (const method of ['dopri5', 'heun', 'rk4'] as const) {
      const ops = countingOps();
      const y0 = vec(1, 0);
      const ys = await odeint(ops.owned(rot), y0, [0, 0.5, 1.5], { method, ops, stepSize: 0.1 });
      for (const y of ys) ops.dispose!(y);
      expect(ops.live.size).toBe(0);
    }
  });
});

describe('float32VectorOps', () => {
  it('rounds every result to f32', () => {
    const x = float32VectorOps.axpy(0.1, [1 / 3], [1e-9]);
    expect(x[0]).toBe(Math.fround(Math.fround(Math.fround(0.1) * Math.fround(1 / 3)) + Math.fround(1e-9)));
    expect(x).toBeInstanceOf(Float32Array);
  });
});

describe('solveTracked', () => {
  it('tracks states on the grid with dopri5 and fixed methods', async () => {
    for (const method of ['dopri5', 'rk4'] as const) {
      const tr = await solveTracked(rot, [1, 0], 2, { h: 0.1, method, rtol: 1e-9, atol: 1e-11 });
      expect(tr.times).toHaveLength(21);
      expect(tr.times[20]).toBe(2);
      tr.states.forEach((u, k) => expect(maxErr(u!, rotExact(tr.times[k], [1, 0]))).toBeLessThan(method === 'rk4' ? 3e-5 : 1e-8));
      expect(tr.final).toBe(tr.states[20]);
    }
  });

  it('recompute reproduces the stored states exactly', async () => {
    const f: OdeFunc<HostVector> = (t, u) => vec(-Math.sin(u[0]) + Math.cos(t) * u[1], -0.3 * u[1] + 0.1 * u[0] * u[0]);
    for (const method of ['dopri5', 'heun'] as const) {
      const full = await solveTracked(f, [1, -0.5], 3, { nStates: 50, method, rtol: 1e-6, atol: 1e-9 });
      const ckpt = await solveTracked(f, [1, -0.5], 3, {
        nStates: 50,
        method,
        rtol: 1e-6,
        atol: 1e-9,
        recompute: true,
      });
      expect(ckpt.checkpointEvery).toBe(7);
      expect(ckpt.states.filter((s) => s !== undefined)).toHaveLength(9); // 0, 7, …, 49 and 50
      for (let k0 = 0; k0 < 50; k0 += 7) {
        const seg = await ckpt.recompute(k0, Math.min(50, k0 + 7));
        seg.forEach((u, i) => expect(Array.from(u)).toEqual(Array.from(full.states[k0 + i]!)));
      }
      const vjpF = (u: HostVector, t: number, l: HostVector): HostVector => vec(-Math.cos(u[0]) * l[0] + 0.2 * u[0] * l[1], Math.cos(t) * l[0] - 0.3 * l[1]);
      const g1 = await adjointGradient({ trajectory: full, dJdUT: [1, 2], vjpF });
      const g2 = await adjointGradient({ trajectory: ckpt, dJdUT: [1, 2], vjpF });
      expect(Array.from(g2.gradient)).toEqual(Array.from(g1.gradient));
      expect(g2.recomputedStates).toBe(50 - 8);
      expect(g1.recomputedStates).toBe(0);
    }
  });

  it('rejects bad grids', async () => {
    await expect(solveTracked(rot, [1, 0], 1, {})).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(solveTracked(rot, [1, 0], 1, { h: 0.1, nStates: 10 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(solveTracked(rot, [1, 0], -1, { nStates: 10 })).rejects.toBeInstanceOf(InvalidArgumentError);
  });
});

describe('adjointGradient', () => {
  // J = cᵀu(T) for u' = A u: dJ/du0 = e^{AᵀT} c; the VJP is Aᵀλ.
  const c = [1, -2];
  const T = 2;
  const vjpRot = (_u: HostVector, _t: number, l: HostVector): HostVector => vec(a * l[0] - b * l[1], b * l[0] + a * l[1]);
  const exactGrad = (): number[] => {
    const s = Math.exp(a * T);
    const [co, si] = [Math.cos(b * T), Math.sin(b * T)];
    return [s * (co * c[0] - si * c[1]), s * (si * c[0] + co * c[1])];
  };

  async function gradError(method: 'heun' | 'euler', n: number): Promise<number> {
    const tr = await solveTracked(rot, [0.3, 0.7], T, { nStates: n, rtol: 1e-10, atol: 1e-12 });
    const { gradient, vjpCalls } = await adjointGradient({ trajectory: tr, dJdUT: c, vjpF: vjpRot, method });
    expect(vjpCalls).toBe(method === 'heun' ? 2 * n : n);
    return maxErr(gradient, exactGrad());
  }

  it('Heun adjoint matches the closed form and is second order', async () => {
    const [e1, e2, e3] = [await gradError('heun', 50), await gradError('heun', 100), await gradError('heun', 200)];
    expect(e3).toBeLessThan(1e-3);
    expect(order(e1, e2)).toBeGreaterThan(1.9);
    expect(order(e2, e3)).toBeGreaterThan(1.9);
    expect(order(e2, e3)).toBeLessThan(2.2);
  });

  it('Euler adjoint is first order', async () => {
    const [e1, e2, e3] = [await gradError('euler', 50), await gradError('euler', 100), await gradError('euler', 200)];
    expect(order(e1, e2)).toBeGreaterThan(0.9);
    expect(order(e2, e3)).toBeGreaterThan(0.95);
    expect(order(e2, e3)).toBeLessThan(1.1);
  });

  it('accepts explicit states on a non-uniform grid (time-dependent Jacobian)', async () => {
    // y' = −2ty (E6 homogeneous part): λ(0) = λ(T)e^{−T²}; VJP −2tλ.
    const times = Array.from({ length: 201 }, (_, k) => (k / 200) ** 1.5);
    const states = times.map(() => vec(0)); // the VJP does not read u
    const { gradient } = await adjointGradient({
      states,
      times,
      dJdUT: vec(3),
      vjpF: (_u, t, l) => vec(-2 * t * l[0]),
    });
    expect(Math.abs(gradient[0] - 3 * Math.exp(-1))).toBeLessThan(1e-4);
  });

  it('releases everything it creates, including recomputed stretches', async () => {
    for (const forward of ['dopri5', 'rk4'] as const) {
      const ops = countingOps();
      const tr = await solveTracked(ops.owned(rot), vec(1, 0), 1, {
        nStates: 20,
        method: forward,
        ops,
        recompute: true,
      });
      const dJ = vec(1, 1);
      for (const method of ['heun', 'euler'] as const) {
        const { gradient } = await adjointGradient({ trajectory: tr, dJdUT: dJ, vjpF: ops.owned(vjpRot), ops, method });
        ops.dispose!(gradient);
      }
      tr.dispose();
      expect(ops.live.size).toBe(0);
    }
  });

  it('rejects mismatched inputs', async () => {
    await expect(adjointGradient({ states: [vec(0)], times: [0, 1], dJdUT: [1], vjpF: vjpRot })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(adjointGradient({ states: [vec(0), vec(0)], times: [0, 1], dJdUT: [1], vjpF: vjpRot, method: 'rk4' as never })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
  });
});

describe('E6 adjoint-ode-accuracy (quick)', () => {
  it('meets the goals: Heun ≤ 5e-3 / 5e-5 at T = 1 with 10 / 100 states, Euler adjoint first order', async () => {
    const { rows } = await runAdjointOdeAccuracy({ quick: true });
    expect(rows).toHaveLength(2 * 2 * 3);
    const get = (method: string, T: number, states: number): number => rows.find((r) => r.method === method && r.T === T && r.states === states)!.relError;
    expect(get('adjoint-heun', 1, 10)).toBeLessThan(5e-3);
    expect(get('adjoint-heun', 1, 100)).toBeLessThan(5e-5);
    const eulerRatio = get('adjoint-euler', 1, 10) / get('adjoint-euler', 1, 100);
    expect(eulerRatio).toBeGreaterThan(8);
    expect(eulerRatio).toBeLessThan(12.5);
    const backpropRatio = get('backprop-euler', 1, 10) / get('backprop-euler', 1, 100);
    expect(backpropRatio).toBeGreaterThan(8);
    // As the paper's Appendix A: the Heun adjoint beats backprop through Euler at equal states.
    expect(get('adjoint-heun', 0.5, 10)).toBeLessThan(get('backprop-euler', 0.5, 10));
  });
});
