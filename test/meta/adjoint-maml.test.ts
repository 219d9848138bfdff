/** @file Adjoint-MAML: tree VectorOps on the device, the meta-gradient against closed forms (quadratic, with and without the proximal term) and against backprop through a fine RK4 unroll of a tiny MLP, checkpointing, errors, leaks. */
import { describe, expect, it } from 'vitest';
import { AdjointMAML, FOMAML, type MetaProblem, type SupportQueryTask, odeint, treeVectorOps } from '@metagrad/meta';
import { InvalidArgumentError, type Device, type Tensor, tensor } from '@metagrad/tensor';
import { add, assertNoLeaks, detach, enableGrad, expectNoLeaks, grad, memory, mulScalar, requiresGrad } from '@metagrad/autograd';
import { type ParamTree, disposeTree, fromLeaves, leaves } from '@metagrad/models';
import { useDevice } from '../helpers/device';
import { Q, disposeTask, flat, linearProblem, quadraticTask, quadraticTheta, relErr, tinyTanhMlp } from '../helpers/meta-tasks';

const getDevice = useDevice();

describe('treeVectorOps', () => {
  it('runs dopri5 over a parameter tree on the device (u′ = −u) without leaks', async () => {
    const device = getDevice();
    await expectNoLeaks(
      async () => {
        const ops = treeVectorOps<{ a: Tensor; b: Tensor[] }>();
        const u0 = { a: tensor([1, -2], [2], 'f32', device), b: [tensor([0.5, 3, -1, 2], [2, 2], 'f32', device)] };
        const ys = await odeint((_t, u) => ops.scale(u, -1), u0, [0, 0.5, 1], {
          method: 'dopri5',
          rtol: 1e-6,
          atol: 1e-8,
          ops,
        });
        const got = await flat(ys[2]);
        [1, -2, 0.5, 3, -1, 2].forEach((v, i) => expect(got[i]).toBeCloseTo(v * Math.exp(-1), 5));
        ys.forEach((y) => ops.dispose!(y));
        const nan = {
          a: tensor([Number.NaN, 0], [2], 'f32', device),
          b: [tensor([0, 0, 0, 0], [2, 2], 'f32', device)],
        };
        expect(await ops.maxAbsRatio!(nan, u0, u0, 1e-3, 1e-6)).toBe(Infinity);
        expect(await ops.norm!(u0)).toBeCloseTo(Math.sqrt(1 + 4 + 0.25 + 9 + 1 + 4), 4);
        ops.dispose!(nan);
        ops.dispose!(u0);
      },
      device,
      'treeVectorOps',
    );
  });
});

// ---- Quadratic Q (test/helpers/meta-tasks.ts): linear model with mean squared error; the gradient flow is linear, so dJ/dθ has a closed form.
type Mat = number[][];
const eye = (n: number): Mat => Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
const mm = (A: Mat, B: Mat): Mat => A.map((r) => B[0].map((_, j) => r.reduce((s, a, k) => s + a * B[k][j], 0)));
const mv = (A: Mat, v: number[]): number[] => A.map((r) => r.reduce((s, a, j) => s + a * v[j], 0));
const lin = (a: number, A: Mat, b: number, B: Mat): Mat => A.map((r, i) => r.map((v, j) => a * v + b * B[i][j]));
/** e^{M} by scaling and squaring a 20-term Taylor series (float64, small matrices). */
function expm(M: Mat): Mat {
  const norm = Math.max(...M.map((r) => r.reduce((s, v) => s + Math.abs(v), 0)));
  const s = Math.max(0, Math.ceil(Math.log2(norm + 1e-300)) + 1);
  const A = M.map((r) => r.map((v) => v / 2 ** s));
  let term = eye(M.length);
  let sum = eye(M.length);
  for (let k = 1; k <= 20; k++) {
    term = mm(term, A).map((r) => r.map((v) => v / k));
    sum = lin(1, sum, 1, term);
  }
  for (let i = 0; i < s; i++) sum = mm(sum, sum);
  return sum;
}
function inv(A: Mat): Mat {
  const n = A.length;
  const M = A.map((r, i) => [...r, ...eye(n)[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let i = c + 1; i < n; i++) if (Math.abs(M[i][c]) > Math.abs(M[p][c])) p = i;
    [M[c], M[p]] = [M[p], M[c]];
    const d = M[c][c];
    M[c] = M[c].map((v) => v / d);
    for (let i = 0; i < n; i++) if (i !== c) M[i] = M[i].map((v, j) => v - M[i][c] * M[c][j]);
  }
  return M.map((r) => r.slice(n));
}
function quadratic(x: number[], y: number[], d: number): { H: Mat; b: number[] } {
  const N = y.length;
  const H = Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (2 / N) * y.reduce((s, _v, k) => s + x[k * d + i] * x[k * d + j], 0)));
  const b = Array.from({ length: d }, (_, i) => (2 / N) * y.reduce((s, yk, k) => s + x[k * d + i] * yk, 0));
  return { H, b };
}

/** dJ(u(T))/dθ for du/dt = −(Hu − b) − μ(u − θ): with A = H + μI, du(T)/dθ = e^{−AT} + μA⁻¹(I − e^{−AT}) (symmetric). */
function quadraticMetaGradient(T: number, mu: number): number[] {
  const { H, b } = quadratic(Q.xs, Q.ys, Q.d);
  const q = quadratic(Q.xq, Q.yq, Q.d);
  const A = lin(1, H, mu, eye(Q.d));
  const E = expm(A.map((r) => r.map((v) => -T * v)));
  const Ai = inv(A);
  const c = b.map((v, i) => v + mu * Q.theta[i]);
  const uT = mv(E, Q.theta).map((v, i) => v + mv(mm(Ai, lin(1, eye(Q.d), -1, E)), c)[i]);
  const gJ = mv(q.H, uT).map((v, i) => v - q.b[i]);
  const M = lin(1, E, mu, mm(Ai, lin(1, eye(Q.d), -1, E)));
  return mv(M, gJ);
}

/**
 * A-MAML's discrete algorithm on the quadratic in float64: T/h RK4 steps of du/dt = −(Hu − b) from θ, λ(T) =
 * H_q u(T) − b_q, then T/h backward Heun steps of dλ/dt = −(∂f/∂u)ᵀλ = Hλ (the adjoint does not depend on u here).
 */
function rk4HeunOnHost(T: number, h: number): number[] {
  const { H, b } = quadratic(Q.xs, Q.ys, Q.d);
  const q = quadratic(Q.xq, Q.yq, Q.d);
  const f = (u: number[]) => mv(H, u).map((v, i) => b[i] - v);
  const axpy = (a: number, x: number[], y: number[]) => y.map((v, i) => v + a * x[i]);
  const steps = Math.round(T / h);
  let u = [...Q.theta];
  for (let k = 0; k < steps; k++) {
    const k1 = f(u);
    const k2 = f(axpy(h / 2, k1, u));
    const k3 = f(axpy(h / 2, k2, u));
    const k4 = f(axpy(h, k3, u));
    u = u.map((v, i) => v + (h / 6) * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]));
  }
  let lambda = mv(q.H, u).map((v, i) => v - q.b[i]);
  const g = (l: number[]) => mv(H, l).map((v) => -v);
  for (let k = 0; k < steps; k++) {
    const g1 = g(lambda);
    const g2 = g(axpy(h, g1, lambda));
    lambda = lambda.map((v, i) => v + (h / 2) * (g1[i] + g2[i]));
  }
  return lambda;
}

/** Runs A-MAML on the quadratic and checks that everything it allocated (task and θ included) was freed. */
async function quadraticAmaml(device: Device, opts: Parameters<typeof AdjointMAML>[0]): Promise<{ g: number[]; hvps: number }> {
  const before = memory(device);
  const theta = quadraticTheta(device);
  const task = quadraticTask(device);
  try {
    const r = await AdjointMAML(opts).metaGradient(linearProblem, theta, task);
    const g = await flat(r.gradient);
    disposeTree(r.gradient);
    return { g, hvps: r.stats.hvps };
  } finally {
    disposeTree(theta);
    disposeTask(task);
    assertNoLeaks(device, before, `AdjointMAML ${JSON.stringify(opts)}`);
  }
}

describe('AdjointMAML on a quadratic (closed form)', () => {
  it('Heun adjoint converges at second order to the exact meta-gradient, without leaks', async () => {
    const device = getDevice();
    const exact = quadraticMetaGradient(2, 0);
    await expectNoLeaks(
      async () => {
        const coarse = await quadraticAmaml(device, { T: 2, h: 0.1, rtol: 1e-6, atol: 1e-8 });
        const fine = await quadraticAmaml(device, { T: 2, h: 0.05, rtol: 1e-6, atol: 1e-8 });
        const e1 = relErr(coarse.g, exact);
        const e2 = relErr(fine.g, exact);
        expect(fine.hvps).toBe(2 * 40);
        expect(e2).toBeLessThan(2e-3);
        // Second order: halving h cuts the error about 4×.
        expect(Math.log2(e1 / e2)).toBeGreaterThan(1.6);
        expect(Math.log2(e1 / e2)).toBeLessThan(2.4);
      },
      device,
      'AdjointMAML',
    );
  });

  it('with the proximal term, λ(0) + μ∫λ dt matches the closed form', async () => {
    const exact = quadraticMetaGradient(1, 0.7);
    const got = await quadraticAmaml(getDevice(), { T: 1, h: 0.02, proximal: 0.7, rtol: 1e-6, atol: 1e-8 });
    expect(relErr(got.g, exact)).toBeLessThan(1e-3);
    // …and the proximal term matters here: ignoring it would be far off.
    expect(relErr(quadraticMetaGradient(1, 0), exact)).toBeGreaterThan(0.05);
  });

  it('checkpointing (recompute) and the per-leaf tree path give the stored flat-vector result with an RK4 forward', async () => {
    const device = getDevice();
    const stored = await quadraticAmaml(device, { T: 1, h: 0.05, forwardMethod: 'rk4' });
    const recomputed = await quadraticAmaml(device, {
      T: 1,
      h: 0.05,
      forwardMethod: 'rk4',
      recompute: true,
      checkpointEvery: 4,
      flatten: false,
    });
    expect(relErr(recomputed.g, stored.g)).toBeLessThan(1e-6);
    // The RK4 path against an independent reference: the same discrete algorithm (RK4 forward, Heun adjoint) in
    // float64 on the host. Measured 3.8e-7 (llvmpipe and SwiftShader); tolerance 2e-6. Its distance to the continuous
    // closed form (7.9e-4, the Heun adjoint's O(h²)) is checked too.
    const host = rk4HeunOnHost(1, 0.05);
    expect(relErr(stored.g, host)).toBeLessThan(2e-6);
    expect(relErr(stored.g, quadraticMetaGradient(1, 0))).toBeLessThan(1e-3);
  });
});

/** dJ(u_n)/dθ by backprop through an RK4 unroll of du/dt = −∇L(u) (createGraph): the continuous meta-gradient to O(h⁴). */
async function rk4Reference<P extends ParamTree>(
  problem: MetaProblem<P, SupportQueryTask>,
  theta: P,
  task: SupportQueryTask,
  T: number,
  n: number,
): Promise<number[]> {
  const th = leaves(theta).map((t) => requiresGrad(detach(t)));
  const handles: Tensor[] = [];
  const keep = <X extends Tensor>(t: X): X => (handles.push(t), t);
  try {
    const g = enableGrad(() => {
      const f = (u: Tensor[]): Tensor[] => {
        const L = problem.innerLoss(fromLeaves(theta, u), task);
        const gs = grad(L, u, { createGraph: true });
        L.dispose();
        return gs.map((x) => keep(mulScalar(x, -1)));
      };
      const axpy = (a: number, x: Tensor[], y: Tensor[]): Tensor[] => x.map((xi, i) => keep(add(keep(mulScalar(xi, a)), y[i])));
      const h = T / n;
      let u = th;
      for (let k = 0; k < n; k++) {
        const k1 = f(u);
        const k2 = f(axpy(h / 2, k1, u));
        const k3 = f(axpy(h / 2, k2, u));
        const k4 = f(axpy(h, k3, u));
        u = axpy(h / 6, k1, axpy(h / 3, k2, axpy(h / 3, k3, axpy(h / 6, k4, u))));
      }
      const J = keep(problem.outerLoss(fromLeaves(theta, u), task));
      return grad(J, th);
    });
    const out = (await Promise.all(g.map(async (t) => Array.from(await t.toArray())))).flat();
    g.forEach((t) => t.dispose());
    return out;
  } finally {
    handles.forEach((t) => t.dispose());
    th.forEach((t) => t.dispose());
  }
}

describe('AdjointMAML on a tiny tanh MLP', () => {
  it('agrees with backprop through a fine RK4 unroll to solver accuracy (and the Jacobian term matters)', async () => {
    const device = getDevice();
    const { theta, task, problem } = tinyTanhMlp(device);
    const T = 1;
    try {
      const ref = await rk4Reference(problem, theta, task, T, 20);
      await expectNoLeaks(
        async () => {
          const r = await AdjointMAML({ T, h: 0.05, rtol: 1e-6, atol: 1e-8 }).metaGradient(problem, theta, task);
          const got = await flat(r.gradient);
          disposeTree(r.gradient);
          expect(relErr(got, ref)).toBeLessThan(2e-3);
          expect(r.stats.innerSteps).toBe(20);
          // The first-order surrogate ∇J(u(T)) is far from it: the adjoint's Hessian terms carry real weight.
          const fo = await FOMAML({ steps: 20, innerLr: 0.05 }).metaGradient(problem, theta, task);
          const first = await flat(fo.gradient);
          disposeTree(fo.gradient);
          expect(relErr(first, ref)).toBeGreaterThan(20 * relErr(got, ref));
        },
        device,
        'AdjointMAML on an MLP',
      );
    } finally {
      disposeTree(theta);
      disposeTask(task);
    }
  });

  it('refuses a T that is not a whole number of h, and bad options', () => {
    expect(() => AdjointMAML({ T: 1, h: 0.3 })).toThrow(InvalidArgumentError);
    expect(() => AdjointMAML({ T: 1, h: 0.3 })).toThrow(/T=1, h=0.3/);
    expect(() => AdjointMAML({ T: 0, h: 0.1 })).toThrow(/T must be/);
    expect(() => AdjointMAML({ T: 1, h: 0.1, proximal: -1 })).toThrow(/proximal/);
  });
});
