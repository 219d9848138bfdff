/**
 * @file NaN/Inf dynamics fail loudly in every ODE solver: odeint (fixed methods and dopri5, forward and backward),
 * solveTracked (with and without checkpoints), the adjoint sweep, and on the GPU through treeVectorOps, each with a
 * NonFiniteDynamicsError that names the time and the state norm, and without leaking what they allocated.
 */
import { describe, expect, it } from 'vitest';
import { type HostVector, NonFiniteDynamicsError, type OdeFunc, adjointGradient, hostVectorOps, odeint, solveTracked, treeVectorOps } from '@metagrad/meta';
import { InvalidArgumentError, type Tensor, tensor } from '@metagrad/tensor';
import { expectNoLeaks } from '@metagrad/autograd';
import { useDevice } from '../helpers/device';
import { countingOps } from './counting-ops';

const getDevice = useDevice();
const vec = (...xs: number[]): Float64Array => Float64Array.from(xs);
const METHODS = ['euler', 'heun', 'midpoint', 'rk4', 'dopri5'] as const;

async function rejection(promise: Promise<unknown>): Promise<NonFiniteDynamicsError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(NonFiniteDynamicsError);
  return error as NonFiniteDynamicsError;
}

describe('odeint with non-finite dynamics', () => {
  it('NaN from t = 0: every method names t = 0 and ‖y0‖, forward and backward in time, and leaks nothing', async () => {
    const nan: OdeFunc<HostVector> = (_t, y) => vec(Number.NaN, y[1]);
    for (const method of METHODS) {
      for (const firstStep of method === 'dopri5' ? [undefined, 0.1] : [undefined]) {
        const ops = countingOps();
        const error = await rejection(odeint(ops.owned(nan), vec(3, 4), [0, 0.5, 1], { method, ops, stepSize: 0.1, firstStep }));
        expect(error.t, method).toBe(0);
        expect(error.stateNorm, method).toBe(5);
        expect(error.message).toMatch(/became non-finite at t = 0 \(state norm ‖y‖ = 5\): the dynamics f\(t, y\) returned NaN/);
        expect(ops.live.size, method).toBe(0);
      }
      const backward = await rejection(odeint(nan, vec(3, 4), [2, 1], { method }));
      expect(backward.t, method).toBe(2);
    }
  });

  it('NaN that starts at t = 0.55: fixed methods name the first step that saw it, dopri5 the time it cannot pass', async () => {
    const f: OdeFunc<HostVector> = (t, y) => (t > 0.55 ? vec(Number.POSITIVE_INFINITY) : vec(-y[0]));
    for (const method of METHODS) {
      const ops = countingOps();
      const error = await rejection(odeint(ops.owned(f), vec(1), [0, 0.3, 1], { method, ops, stepSize: 0.1 }));
      // dopri5 stops just short of 0.55, where every step it tries reaches past it.
      expect(error.t, method).toBeGreaterThan(method === 'dopri5' ? 0.549 : 0.55);
      expect(error.t, method).toBeLessThanOrEqual(method === 'dopri5' ? 0.55 : 0.6 + 1e-12);
      // The state there is about e^{-0.55}: finite, and named.
      expect(Math.abs(error.stateNorm - Math.exp(-error.t)), method).toBeLessThan(0.05);
      expect(ops.live.size, method).toBe(0);
    }
  });

  it('dopri5 rejects a step whose error has NaN in any entry, not only the last (host maxAbsRatio)', () => {
    expect(hostVectorOps.maxAbsRatio!(vec(Number.NaN, 1), vec(1, 1), vec(1, 1), 0, 1)).toBeNaN();
    expect(hostVectorOps.maxAbsRatio!(vec(1, Number.NaN, 0.5), vec(1, 1, 1), vec(1, 1, 1), 0, 1)).toBeNaN();
    expect(hostVectorOps.maxAbsRatio!(vec(0.25, -2, 0.5), vec(1, 1, 1), vec(1, 1, 1), 0, 1)).toBe(2);
  });

  it('finite dynamics whose steps overflow are told apart from NaN dynamics', async () => {
    // One Euler step y1 = y0 + f(y0) with y0 = f(y0) = 1e308 overflows, although f is finite.
    const error = await rejection(odeint((_t, y) => vec(y[0]), vec(1e308), [0, 1], { method: 'euler' }));
    expect(error.message).toMatch(/f stayed finite .* the steps overflowed; use a smaller stepSize/);
    await expect(odeint((_t, y) => vec(y[0]), vec(Number.NaN), [0, 1], { method: 'rk4' })).rejects.toThrow(InvalidArgumentError);
    await expect(odeint((_t, y) => vec(y[0]), vec(Number.NaN), [0, 1])).rejects.toThrow(InvalidArgumentError);
  });
});

describe('solveTracked and adjointGradient with non-finite dynamics', () => {
  it('solveTracked names the time for dopri5 and fixed methods, with and without checkpoints, and leaks nothing', async () => {
    const f: OdeFunc<HostVector> = (t, y) => (t > 0.55 ? vec(Number.NaN) : vec(-y[0]));
    for (const method of METHODS) {
      for (const recompute of [false, true]) {
        const ops = countingOps();
        const error = await rejection(solveTracked(ops.owned(f), vec(1), 1, { method, ops, nStates: 10, recompute }));
        expect(error.t, `${method} ${recompute}`).toBeGreaterThan(method === 'dopri5' ? 0.549 : 0.55);
        expect(error.t, `${method} ${recompute}`).toBeLessThanOrEqual(0.6 + 1e-12);
        expect(ops.live.size, `${method} ${recompute}`).toBe(0);
      }
    }
  });

  it('adjointGradient with a NaN VJP throws instead of returning a NaN gradient', async () => {
    const ops = countingOps();
    const traj = await solveTracked(
      ops.owned((_t, y) => vec(-y[0])),
      vec(1),
      1,
      { method: 'heun', ops, nStates: 4 },
    );
    const vjpF = (_u: HostVector, t: number, lambda: HostVector): HostVector => {
      const out = t < 0.5 ? vec(Number.NaN) : vec(-lambda[0]);
      ops.live.add(out);
      return out;
    };
    const error = await rejection(adjointGradient({ trajectory: traj, dJdUT: vec(2), vjpF, ops }));
    expect(error.t).toBe(0);
    expect(error.stateNorm).toBe(2);
    expect(error.message).toMatch(/adjoint sweep .* λ\(t_0\) NaN/);
    traj.dispose();
    expect(ops.live.size).toBe(0);
  });
});

describe('on the GPU (treeVectorOps)', () => {
  it('NaN and Infinity dynamics throw NonFiniteDynamicsError for a fixed method and dopri5, without leaking tensors', async () => {
    const device = getDevice();
    const ops = treeVectorOps<Tensor>();
    const y0 = tensor([3, 4], [2], 'f32', device);
    await expectNoLeaks(async () => {
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
        const f: OdeFunc<Tensor> = () => tensor([bad, 0], [2], 'f32', device);
        for (const method of ['rk4', 'dopri5'] as const) {
          const error = await rejection(odeint(f, y0, [0, 1], { method, ops, stepSize: 0.25 }));
          expect(error.t).toBe(0);
          expect(error.stateNorm).toBeCloseTo(5, 5);
        }
      }
      // Finite dynamics still solve: y' = −y.
      const ys = await odeint((_t, y) => ops.scale(y, -1), y0, [0, 1], { method: 'rk4', ops, stepSize: 0.1 });
      const end = Array.from(await ys[1].toArray());
      expect(end[0]).toBeCloseTo(3 * Math.exp(-1), 4);
      ys.forEach((y) => y.dispose());
    }, device);
    y0.dispose();
  });
});
