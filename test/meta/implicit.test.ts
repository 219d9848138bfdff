/** @file NeumannIFT and ConjugateGradientIFT on a quadratic inner problem, where the implicit hypergradient has a closed form. */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, tensor, tidy, type Device, type Tensor } from '@metagrad/tensor';
import { expectNoLeaks, matmul, mul, mulScalar, square, sub, sum, add } from '@metagrad/autograd';
import { disposeTree, type ParamTree } from '@metagrad/models';
import {
  ConjugateGradientIFT,
  NeumannDivergenceError,
  NeumannIFT,
  NonFiniteHypergradientError,
  treeToVector,
  type BilevelProblem,
  type HypergradEstimator,
  type HypergradInput,
} from '@metagrad/meta';
import { useDevice } from '../helpers/device';
import { A, Bm, c, k, lam, n } from '../helpers/ift-quadratic';
import { solve } from '../helpers/linear-solve';

const getDevice = useDevice();

// L_T(w, λ) = ½ wᵀAw − wᵀBλ, L_V(w, λ) = ½‖w − c‖² + ½ρ‖λ‖²: w*(λ) = A⁻¹Bλ and
// dL_V/dλ = ρλ + Bᵀ A⁻¹ (w* − c). A is symmetric positive definite with eigenvalues in about [0.5, 2]
// (A, B, c and λ: test/helpers/ift-quadratic.ts).
const rho = 0.3;

const Blam = Array.from({ length: n }, (_, i) => Bm.slice(i * k, i * k + k).reduce((s, v, j) => s + v * lam[j], 0));
const wStar = solve(A, Blam);
const u = solve(
  A,
  wStar.map((v, i) => v - c[i]),
);
const expected = lam.map((l, j) => rho * l + Array.from({ length: n }, (_, i) => Bm[i * k + j] * u[i]).reduce((s, v) => s + v, 0));

function setup(device: Device) {
  const At = tensor(A, [n, n], 'f32', device);
  const Bt = tensor(Bm, [n, k], 'f32', device);
  const ct = tensor(c, [n, 1], 'f32', device);
  const problem: BilevelProblem<ParamTree, ParamTree, null> = {
    // Problems free their intermediates (tidy), as the estimators expect.
    trainLoss: (w, l) =>
      tidy(() => {
        const wv = w as Tensor;
        const quad = mulScalar(sum(mul(wv, matmul(At, wv))), 0.5);
        const lin = sum(mul(wv, matmul(Bt, l as Tensor)));
        return sub(quad, lin);
      }),
    valLoss: (w, l) => tidy(() => add(mulScalar(sum(square(sub(w as Tensor, ct))), 0.5), mulScalar(sum(square(l as Tensor)), 0.5 * rho))),
  };
  const theta = tensor(wStar, [n, 1], 'f32', device);
  const lambda = tensor(lam, [k, 1], 'f32', device);
  const input: HypergradInput<ParamTree, ParamTree, null> = {
    problem,
    theta,
    lambda,
    trainBatch: null,
    valBatch: null,
    innerLr: 0.3,
  };
  return { input, dispose: () => disposeTree([At, Bt, ct, theta, lambda] as ParamTree) };
}

async function hypergrad(est: HypergradEstimator<null>, input: HypergradInput<ParamTree, ParamTree, null>) {
  const r = await est.estimate(input);
  const v = await treeToVector(r.hypergrad);
  disposeTree(r.hypergrad);
  return { v: Array.from(v), stats: r.stats };
}

const err = (v: number[]): number => Math.max(...v.map((x, i) => Math.abs(x - expected[i]))) / Math.max(...expected.map(Math.abs));

describe('implicit hypergradients on a quadratic inner problem', () => {
  it('Neumann converges to the implicit gradient as iterations grow (α-scaled series)', async () => {
    const { input, dispose } = setup(getDevice());
    const errs: number[] = [];
    for (const N of [2, 10, 80]) {
      const { v, stats } = await hypergrad(new NeumannIFT({ iterations: N, alpha: 0.3 }), input);
      expect(stats.hvps).toBe(N);
      expect(stats.jvps).toBe(1);
      errs.push(err(v));
    }
    expect(errs[1]).toBeLessThan(errs[0]);
    expect(errs[2]).toBeLessThan(errs[1]);
    expect(errs[2]).toBeLessThan(1e-4);
    // alpha defaults to innerLr (0.3 here).
    expect(err((await hypergrad(new NeumannIFT({ iterations: 80 }), input)).v)).toBeLessThan(1e-4);
    dispose();
  });

  it('CG solves the system in n iterations; damping biases it', async () => {
    const { input, dispose } = setup(getDevice());
    const exact = await hypergrad(new ConjugateGradientIFT({ iterations: n + 2 }), input);
    expect(err(exact.v)).toBeLessThan(1e-4);
    expect(exact.stats.hvps).toBeLessThanOrEqual(n + 2);
    const damped = await hypergrad(new ConjugateGradientIFT({ iterations: n + 2, damping: 0.5 }), input);
    expect(err(damped.v)).toBeGreaterThan(1e-2);
    const one = await hypergrad(new ConjugateGradientIFT({ iterations: 1 }), input);
    expect(one.stats.hvps).toBe(1);
    expect(err(one.v)).toBeGreaterThan(err(exact.v));
    dispose();
  });

  it('rejects invalid settings with named errors that show the value', () => {
    expect(() => new NeumannIFT({ iterations: 0 })).toThrow(InvalidArgumentError);
    expect(() => new NeumannIFT({ iterations: 3, alpha: -1 })).toThrow(/alpha.*-1/);
    expect(() => new ConjugateGradientIFT({ iterations: 2.5 })).toThrow(InvalidArgumentError);
    expect(() => new ConjugateGradientIFT({ iterations: 3, damping: -0.1 })).toThrow(/damping.*-0.1/);
  });

  it('frees everything it allocates', async () => {
    const { input, dispose } = setup(getDevice());
    await expectNoLeaks(async () => {
      for (const est of [new NeumannIFT<null>({ iterations: 3, alpha: 0.3 }), new ConjugateGradientIFT<null>({ iterations: 3, damping: 0.1 })]) {
        const r = await est.estimate(input);
        disposeTree(r.hypergrad);
      }
    }, getDevice());
    dispose();
  });
});

/** λ_max(A) by power iteration in float64 (A is symmetric positive definite). */
function largestEigenvalue(): number {
  let x = Array.from({ length: n }, (_, i) => 1 + i);
  let lambda = 0;
  for (let it = 0; it < 500; it++) {
    const y = Array.from({ length: n }, (_, i) => x.reduce((s, xj, j) => s + A[i * n + j] * xj, 0));
    const norm = Math.hypot(...y);
    lambda = y.reduce((s, yi, i) => s + yi * x[i], 0) / x.reduce((s, xi) => s + xi * xi, 0);
    x = y.map((v) => v / norm);
  }
  return lambda;
}

describe('implicit estimators fail loudly instead of returning wrong values', () => {
  const critical = 2 / largestEigenvalue();

  it('Neumann with alpha below 2/λ_max converges; above it, NeumannDivergenceError names alpha, the term and the norms', async () => {
    const { input, dispose } = setup(getDevice());
    expect(err((await hypergrad(new NeumannIFT({ iterations: 200, alpha: 0.9 * critical }), input)).v)).toBeLessThan(1e-4);
    for (const [alpha, iterations] of [
      [1.2 * critical, 30],
      [10, 40],
    ]) {
      const attempt = hypergrad(new NeumannIFT({ iterations, alpha }), input);
      await expect(attempt).rejects.toThrow(NeumannDivergenceError);
      const error = (await attempt.catch((e: unknown) => e)) as NeumannDivergenceError;
      expect(error.alpha).toBe(alpha);
      expect(error.norms).toHaveLength(iterations + 1);
      expect(error.iteration).toBeGreaterThan(0);
      expect(error.iteration).toBeLessThanOrEqual(iterations);
      expect(error.norms[error.iteration] > 2 * error.norms[0] || !Number.isFinite(error.norms[error.iteration])).toBe(true);
      expect(error.message).toMatch(new RegExp(`alpha = ${alpha}.*0 < alpha < 2/λ_max`));
    }
    dispose();
  });

  it('non-finite Hessian-vector products raise named errors: CG does not fall back to x = 0, Neumann does not return NaN', async () => {
    const { input, dispose } = setup(getDevice());
    // The same problem with a training loss scaled by NaN: its HVPs are NaN, the validation side is finite.
    const base = input.problem;
    const nan: BilevelProblem<ParamTree, ParamTree, null> = {
      ...base,
      trainLoss: (w, l, b) => tidy(() => mulScalar(base.trainLoss(w, l, b), Number.NaN)),
    };
    const broken = { ...input, problem: nan };
    await expect(hypergrad(new ConjugateGradientIFT({ iterations: 3 }), broken)).rejects.toThrow(NonFiniteHypergradientError);
    await expect(hypergrad(new ConjugateGradientIFT({ iterations: 3 }), broken)).rejects.toThrow(/cg-ift: the curvature .* is NaN at iteration 1 of 3/);
    await expect(hypergrad(new NeumannIFT({ iterations: 3, alpha: 0.3 }), broken)).rejects.toThrow(/NeumannIFT diverged.*NaN at j = 1 of 3/);
    dispose();
  });

  it('frees everything when they throw', async () => {
    const { input, dispose } = setup(getDevice());
    const base = input.problem;
    const nan: BilevelProblem<ParamTree, ParamTree, null> = {
      ...base,
      trainLoss: (w, l, b) => tidy(() => mulScalar(base.trainLoss(w, l, b), Number.NaN)),
    };
    await expectNoLeaks(async () => {
      await expect(new NeumannIFT<null>({ iterations: 20, alpha: 10 }).estimate(input)).rejects.toThrow(NeumannDivergenceError);
      await expect(new ConjugateGradientIFT<null>({ iterations: 3 }).estimate({ ...input, problem: nan })).rejects.toThrow(NonFiniteHypergradientError);
    }, getDevice());
    dispose();
  });
});
