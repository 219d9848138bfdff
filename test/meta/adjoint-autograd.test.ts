/**
 * @file The adjoint with the VJP derived by autograd from the dynamics alone equals the hand-written VJP: on a
 * nonlinear tensor ODE with a parameter (adjointGradient), and for A-MAML (vjp: 'autograd' vs 'hvp') on the A-MAML
 * test problems (quadratic with and without the proximal term, checkpointed per-leaf, tiny tanh MLP), ≤ 1e-5.
 */
import { describe, expect, it } from 'vitest';
import { AdjointMAML, type AdjointMamlOptions, adjointGradient, solveTracked, treeVectorOps } from '@metagrad/meta';
import * as raw from '@metagrad/tensor/raw';
import { InvalidArgumentError, type Tensor, tensor } from '@metagrad/tensor';
import { add, expectNoLeaks, mul, mulScalar, neg, square, tanh } from '@metagrad/autograd';
import { disposeTree } from '@metagrad/models';
import { useDevice } from '../helpers/device';
import { disposeTask, flat, linearProblem, quadraticTask, quadraticTheta, relErr, tinyTanhMlp } from '../helpers/meta-tasks';

const getDevice = useDevice();

describe('adjointGradient: VJP derived from f by autograd', () => {
  it('equals the hand-written VJP and paramVjp on du/dt = −p⊙u³ + sin(t)·tanh(u) (a two-leaf tree)', async () => {
    const device = getDevice();
    type V = { a: Tensor; b: Tensor };
    const ops = treeVectorOps<V>();
    const p: V = { a: tensor([0.7, 1.3, 0.4], [3], 'f32', device), b: tensor([0.9, 0.2], [2], 'f32', device) };
    const u0: V = { a: tensor([0.5, -0.8, 1.1], [3], 'f32', device), b: tensor([-0.3, 0.6], [2], 'f32', device) };
    const dJ: V = { a: tensor([1, -2, 0.5], [3], 'f32', device), b: tensor([0.3, 1], [2], 'f32', device) };
    const leaf = (u: Tensor, q: Tensor, t: number): Tensor => raw.tidy(() => add(neg(mul(q, mul(u, square(u)))), mulScalar(tanh(u), Math.sin(t))));
    const f = (t: number, u: V, q: V = p): V => ({ a: leaf(u.a, q.a, t), b: leaf(u.b, q.b, t) });
    // ∂f/∂u = −3p⊙u² + sin(t)(1 − tanh²u), ∂f/∂p = −u³ (diagonal), by hand with raw ops.
    const dfdu = (u: Tensor, q: Tensor, t: number, l: Tensor): Tensor =>
      raw.tidy(() => raw.mul(raw.add(raw.mulScalar(raw.mul(q, raw.square(u)), -3), raw.mulScalar(raw.rsubScalar(raw.square(raw.tanh(u)), 1), Math.sin(t))), l));
    const vjpF = (u: V, t: number, l: V): V => ({ a: dfdu(u.a, p.a, t, l.a), b: dfdu(u.b, p.b, t, l.b) });
    const paramVjp = (u: V, _t: number, l: V): V => ({
      a: raw.tidy(() => raw.mul(raw.neg(raw.mul(u.a, raw.square(u.a))), l.a)),
      b: raw.tidy(() => raw.mul(raw.neg(raw.mul(u.b, raw.square(u.b))), l.b)),
    });
    try {
      await expectNoLeaks(
        async () => {
          for (const method of ['heun', 'euler'] as const) {
            const traj = await solveTracked((t, u: V) => f(t, u), u0, 1, {
              method: 'rk4',
              nStates: 20,
              ops,
              recompute: true,
              checkpointEvery: 4,
            });
            const hand = await adjointGradient<V>({ trajectory: traj, dJdUT: dJ, vjpF, paramVjp, ops, method });
            const auto = await adjointGradient<V>({ trajectory: traj, dJdUT: dJ, f, params: p, ops, method });
            expect(auto.vjpCalls).toBe(hand.vjpCalls);
            expect(relErr(await flat(auto.gradient), await flat(hand.gradient))).toBeLessThan(1e-5);
            expect(relErr(await flat(auto.paramGradient!), await flat(hand.paramGradient!))).toBeLessThan(1e-5);
            // …and it is not trivially small: the parameter term is a real gradient.
            expect(Math.max(...(await flat(hand.paramGradient!)).map(Math.abs))).toBeGreaterThan(1e-2);
            for (const r of [hand, auto]) [r.gradient, r.paramGradient!].forEach((v) => disposeTree(v));
            traj.dispose();
          }
        },
        device,
        'autograd pullback',
      );
      // One way to give the derivative: f xor vjpF, params only with f, paramVjp only with vjpF.
      const states = [u0, u0];
      await expect(adjointGradient<V>({ states, times: [0, 1], dJdUT: dJ, ops })).rejects.toThrow(/exactly one of vjpF and f/);
      await expect(adjointGradient<V>({ states, times: [0, 1], dJdUT: dJ, ops, f, vjpF })).rejects.toThrow(InvalidArgumentError);
      await expect(adjointGradient<V>({ states, times: [0, 1], dJdUT: dJ, ops, f, paramVjp })).rejects.toThrow(/paramVjp goes with vjpF/);
      await expect(adjointGradient<V>({ states, times: [0, 1], dJdUT: dJ, ops, vjpF, params: p })).rejects.toThrow(/params goes with f/);
      await expect(adjointGradient({ states: [[1], [1]], times: [0, 1], dJdUT: [1], f: (_t, u) => u })).rejects.toThrow(/tensor trees/);
    } finally {
      [p, u0, dJ].forEach((v) => disposeTree(v));
    }
  });

  it('a dynamics that ignores u pulls back zeros (no graph to differentiate)', async () => {
    const device = getDevice();
    const ops = treeVectorOps<Tensor>();
    const u0 = tensor([1, 2], [2], 'f32', device);
    const c = tensor([0.5, -0.5], [2], 'f32', device);
    const f = (): Tensor => mulScalar(c, 1);
    const traj = await solveTracked(f, u0, 1, { method: 'euler', nStates: 4, ops });
    const r = await adjointGradient({ trajectory: traj, dJdUT: u0, f, ops });
    expect(Array.from(await r.gradient.toArray())).toEqual([1, 2]);
    [r.gradient, u0, c].forEach((t) => t.dispose());
    traj.dispose();
  });
});

// ---- A-MAML: vjp 'autograd' against 'hvp' on the adjoint-maml.test.ts problems (test/helpers/meta-tasks.ts).
describe('AdjointMAML with vjp: autograd equals vjp: hvp', () => {
  const quadraticCases: [string, AdjointMamlOptions][] = [
    ['quadratic, dopri5', { T: 2, h: 0.1, rtol: 1e-6, atol: 1e-8 }],
    ['quadratic, proximal 0.7', { T: 1, h: 0.02, proximal: 0.7, rtol: 1e-6, atol: 1e-8 }],
    [
      'quadratic, RK4, recompute, per leaf, Euler sweep',
      {
        T: 1,
        h: 0.05,
        forwardMethod: 'rk4',
        recompute: true,
        checkpointEvery: 4,
        flatten: false,
        backwardMethod: 'euler',
      },
    ],
  ];
  for (const [label, opts] of quadraticCases) {
    it(label, async () => {
      const device = getDevice();
      const theta = quadraticTheta(device);
      const task = quadraticTask(device);
      const problem = linearProblem;
      try {
        await expectNoLeaks(
          async () => {
            const hand = await AdjointMAML(opts).metaGradient(problem, theta, task);
            const auto = await AdjointMAML({ ...opts, vjp: 'autograd' }).metaGradient(problem, theta, task);
            expect(relErr(await flat(auto.gradient), await flat(hand.gradient))).toBeLessThan(1e-5);
            // The same work; only the hand-written VJP's sweep may be replayed from a compiled plan.
            const { replayedStates: _replayed, ...handWork } = hand.stats;
            expect(auto.stats).toEqual(handWork);
            expect(auto.outerLoss).toBe(hand.outerLoss);
            disposeTree(hand.gradient);
            disposeTree(auto.gradient);
          },
          device,
          `A-MAML autograd ${label}`,
        );
      } finally {
        disposeTree(theta);
        disposeTask(task);
      }
    });
  }

  it('tiny tanh MLP (T = 1, h = 0.05, dopri5)', async () => {
    const device = getDevice();
    const { theta, task, problem } = tinyTanhMlp(device);
    try {
      await expectNoLeaks(
        async () => {
          const opts = { T: 1, h: 0.05, rtol: 1e-6, atol: 1e-8 };
          const hand = await AdjointMAML(opts).metaGradient(problem, theta, task);
          const auto = await AdjointMAML({ ...opts, vjp: 'autograd' }).metaGradient(problem, theta, task);
          expect(relErr(await flat(auto.gradient), await flat(hand.gradient))).toBeLessThan(1e-5);
          disposeTree(hand.gradient);
          disposeTree(auto.gradient);
        },
        device,
        'A-MAML autograd MLP',
      );
    } finally {
      disposeTree(theta);
      disposeTask(task);
    }
  });

  it('refuses an unknown vjp mode', () => {
    expect(() => AdjointMAML({ T: 1, h: 0.1, vjp: 'finite-differences' as never })).toThrow(/vjp must be 'hvp' or 'autograd'/);
  });
});
