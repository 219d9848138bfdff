/**
 * @file The bilevel estimators' intermediates ({ intermediates: true }), named as in the papers, against the
 * PyTorch fixture (test/fixtures/hypergrad.json: L_V at θ′, θ* and θ_T) and independent recomputations (float64
 * on the host, or eager device code that does not go through the estimator): T1–T2 θ′, EvoGrad ℓ_k, w_k and θ*,
 * UnrolledRMD's trajectory, Neumann's series and CG's solution. Also: asking for them does not change the
 * hypergradient, not asking returns none, they are the caller's (no leaks), and compile captures them.
 */
import { describe, expect, it } from 'vitest';
import { tensor, tidy, type Device, type Tensor } from '@metagrad/tensor';
import { add, compile, expectNoLeaks, grad, matmul, mul, mulScalar, reshape, slice, square, sub, sum } from '@metagrad/autograd';
import { sgd, tree, type MlpParams } from '@metagrad/models';
import {
  ConjugateGradientIFT,
  EvoGrad,
  NeumannIFT,
  OneStepLookahead,
  UnrolledRMD,
  treeToVector,
  type BilevelProblem,
  type HypergradInput,
} from '@metagrad/meta';
import { useDevice } from '../helpers/device';
import { A, Bm, c as cVec, k, lam, n } from '../helpers/ift-quadratic';
import { solve } from '../helpers/linear-solve';
import { type MwnInput, hypergradFixture as fx, mwnHypergradSetup as setup, mwnProblem as problem } from '../helpers/mwn-hypergrad-fixture';

const getDevice = useDevice();
const flat = async (t: Parameters<typeof treeToVector>[0]) => Array.from(await treeToVector(t));

/** L_V at a point, read back (the fixture stores L_V where each estimator evaluated it). */
async function valLossAt(theta: MlpParams, input: MwnInput): Promise<number> {
  const l = tidy(() => problem.valLoss(theta, input.lambda, input.valBatch));
  const v = await l.item();
  l.dispose();
  return v;
}

function expectClose(got: number[], want: number[], tol: number, what: string): void {
  expect(got.length, what).toBe(want.length);
  const scale = Math.max(1e-30, ...want.map(Math.abs));
  const err = Math.max(...got.map((g, i) => Math.abs(g - want[i]))) / scale;
  expect(err, `${what}: max relative error ${err}`).toBeLessThan(tol);
}

describe('estimator intermediates (opt-in, named as in the papers)', () => {
  it('T1–T2 θ′ = θ − α∇θL_T: equals an eager recomputation, and L_V(θ′) is the PyTorch fixture value', async () => {
    const device = getDevice();
    const { input, dispose } = setup(device);
    const est = new OneStepLookahead();
    const plain = await est.estimate(input);
    expect('thetaPrime' in plain).toBe(false);
    const r = await est.estimate({ ...input, intermediates: true });
    expect(await flat(r.hypergrad)).toEqual(await flat(plain.hypergrad)); // asking does not change the estimate
    const thetaPrime = r.thetaPrime!;
    const want = tidy(() => {
      const leaf = tree.requiresGrad(input.theta);
      const g = grad(problem.trainLoss(leaf, tree.detach(input.lambda), input.trainBatch!), tree.leaves(leaf));
      return tree.axpy(-fx.innerLr, tree.fromLeaves(leaf, g), tree.detach(input.theta));
    });
    expectClose(await flat(thetaPrime), await flat(want), 1e-6, 'θ′');
    expect(await valLossAt(thetaPrime, input)).toBeCloseTo(fx.cases.t1t2.valLoss, 5);
    expect(r.valLoss).toBeCloseTo(fx.cases.t1t2.valLoss, 5);
    tree.dispose([plain.hypergrad, r.hypergrad, thetaPrime, want]);
    dispose();
  });

  it('EvoGrad ℓ_k, w_k = softmax(−ℓ/τ)_k and θ* = θ + Σ w_k ε_k: equal separate forwards and a float64 recomputation; L_V(θ*) is the fixture value', async () => {
    const device = getDevice();
    const { input, noiseOf, dispose } = setup(device);
    for (const name of ['evograd_k3', 'evograd_k2_paper']) {
      const c = fx.cases[name];
      const noise = noiseOf(name);
      // The noise is given, so σ and the noise kind are not needed.
      const est = new EvoGrad({ K: c.K!, tau: c.tau! });
      const r = await est.estimateWithNoise({ ...input, intermediates: true }, noise);
      const losses = Array.from(await r.losses!.toArray());
      const weights = Array.from(await r.weights!.toArray());
      // ℓ_k by K separate trainLoss calls on θ + ε_k (no batched forward, no estimator code).
      const K = c.K!;
      const want: number[] = [];
      for (let k = 0; k < K; k++) {
        const l = tidy(() => {
          const eps = tree.leaves(noise);
          const copy = tree.fromLeaves(
            input.theta,
            tree.leaves(input.theta).map((t, i) => add(t, reshape(slice(eps[i], [k, ...t.shape.map(() => 0)], [k + 1, ...t.shape]), t.shape))),
          );
          return problem.trainLoss(copy, tree.detach(input.lambda), input.trainBatch!);
        });
        want.push(await l.item());
        l.dispose();
      }
      expectClose(losses, want, 1e-6, `${name} ℓ_k`);
      const m = Math.min(...losses);
      const e = losses.map((l) => Math.exp(-(l - m) / c.tau!));
      const z = e.reduce((a, b) => a + b, 0);
      expectClose(
        weights,
        e.map((v) => v / z),
        1e-5,
        `${name} w_k`,
      );
      // θ* = θ + Σ_k w_k ε_k in float64 from the fixture's θ and ε and the returned weights.
      const thetaFlat = fx.theta.flatMap((a) => a.data);
      const eps = c.noise!.map((a) => a.data);
      const sizes = fx.theta.map((a) => a.data.length);
      const starWant: number[] = [];
      fx.theta.forEach((a, leaf) => a.data.forEach((v, i) => starWant.push(v + weights.reduce((s, w, k) => s + w * eps[leaf][k * sizes[leaf] + i], 0))));
      expect(starWant.length).toBe(thetaFlat.length);
      expectClose(await flat(r.thetaStar!), starWant, 1e-6, `${name} θ*`);
      expect(await valLossAt(r.thetaStar!, input)).toBeCloseTo(c.valLoss, 5);
      tree.dispose([r.hypergrad, r.thetaStar!, r.losses!, r.weights!, noise]);
    }
    dispose();
  });

  it('UnrolledRMD trajectory θ_1 … θ_T: θ_1 is one SGD step, L_V(θ_T) is the fixture value, truncated steps included', async () => {
    const device = getDevice();
    const { input, dispose } = setup(device);
    for (const name of ['unrolled_3', 'unrolled_3_trunc1']) {
      const c = fx.cases[name];
      const est = new UnrolledRMD({
        steps: c.steps!,
        truncate: c.truncate,
        optimizer: sgd({ lr: fx.innerLr, momentum: c.momentum }),
      });
      const plain = await est.estimate(input);
      expect(plain.trajectory).toBeUndefined();
      // trainBatch is not needed when trainBatches is given.
      const r = await est.estimate({ ...input, trainBatch: undefined, intermediates: true });
      expect(await flat(r.hypergrad)).toEqual(await flat(plain.hypergrad));
      expect(r.trajectory!.length).toBe(c.steps);
      expect(await valLossAt(r.trajectory!.at(-1)!, input)).toBeCloseTo(c.valLoss, 4);
      // θ_1 = θ_0 − α∇L_T(θ_0; D_1) (heavy ball starts from a zero buffer).
      const want = tidy(() => {
        const leaf = tree.requiresGrad(input.theta);
        const g = grad(problem.trainLoss(leaf, tree.detach(input.lambda), input.trainBatches![0]), tree.leaves(leaf));
        return tree.axpy(-fx.innerLr, tree.fromLeaves(leaf, g), tree.detach(input.theta));
      });
      expectClose(await flat(r.trajectory![0]), await flat(want), 1e-6, `${name} θ_1`);
      tree.dispose([plain.hypergrad, r.hypergrad, ...r.trajectory!, want]);
    }
    dispose();
  });

  it('the intermediates belong to the caller: nothing else stays allocated, with or without them', async () => {
    const device = getDevice();
    const { input, noiseOf, dispose } = setup(device);
    const noise = noiseOf('evograd_k3');
    const c = fx.cases.evograd_k3;
    const withAll = { ...input, intermediates: true };
    await expectNoLeaks(async () => {
      const a = await new OneStepLookahead().estimate(withAll);
      const b = await new EvoGrad({ K: c.K!, tau: c.tau! }).estimateWithNoise(withAll, noise);
      const u = await new UnrolledRMD({ steps: 3, truncate: 1 }).estimate(withAll);
      tree.dispose([a.hypergrad, a.thetaPrime!, b.hypergrad, b.thetaStar!, b.losses!, b.weights!, u.hypergrad, ...u.trajectory!]);
    }, device);
    tree.dispose(noise);
    dispose();
  });

  it('compile captures estimateTensors with intermediates; replays equal the eager values', async () => {
    const device = getDevice();
    const { input, dispose } = setup(device);
    const est = new OneStepLookahead();
    const step = compile(() => est.estimateTensors({ ...input, intermediates: true }));
    const eager = tidy(() => est.estimateTensors({ ...input, intermediates: true }));
    for (let i = 0; i < 6; i++) {
      const out = await step();
      expectClose(await flat(out.thetaPrime!), await flat(eager.thetaPrime!), 1e-6, 'compiled θ′');
      expectClose(await flat(out.hypergrad), await flat(eager.hypergrad), 1e-5, 'compiled hypergradient');
      tree.dispose([out.hypergrad, out.thetaPrime!, out.valLoss]);
    }
    expect(step.stats().replays).toBeGreaterThanOrEqual(1);
    step.dispose();
    tree.dispose([eager.hypergrad, eager.thetaPrime!, eager.valLoss]);
    dispose();
  });
});

// ---- quadratic inner problem for the implicit estimators (test/helpers/ift-quadratic.ts; H = A, ∇θL_V = θ − c): float64 closed forms ----
const w0 = [0.2, -0.1, 0.4, 0.3];
const matVec = (m: number[], v: number[]) => v.map((_, i) => v.reduce((s, x, j) => s + m[i * n + j] * x, 0));

function quadratic(device: Device) {
  const At = tensor(A, [n, n], 'f32', device);
  const Bt = tensor(Bm, [n, k], 'f32', device);
  const ct = tensor(cVec, [n, 1], 'f32', device);
  const qp: BilevelProblem<Tensor, Tensor, null> = {
    trainLoss: (w, l) => tidy(() => sub(mulScalar(sum(mul(w, matmul(At, w))), 0.5), sum(mul(w, matmul(Bt, l))))),
    valLoss: (w) => tidy(() => mulScalar(sum(square(sub(w, ct))), 0.5)),
  };
  const theta = tensor(w0, [n, 1], 'f32', device);
  const lambda = tensor(lam, [k, 1], 'f32', device);
  const input: HypergradInput<Tensor, Tensor, null> = { problem: qp, theta, lambda, trainBatch: null, valBatch: null };
  return { input, dispose: () => tree.dispose([At, Bt, ct, theta, lambda]) };
}

describe('implicit estimators: series and solution', () => {
  it('Neumann: series p_j = Σ_{i≤j} (I − αH)^i ∇θL_V and solution α p_N, as float64; CG: solution = H⁻¹∇θL_V', async () => {
    const device = getDevice();
    const { input, dispose } = quadratic(device);
    const alpha = 0.3;
    const N = 6;
    const r = await new NeumannIFT({ iterations: N, alpha }).estimate({ ...input, intermediates: true });
    const b = w0.map((v, i) => v - cVec[i]);
    let v = b.slice();
    let p = b.slice();
    const series = [p.slice()];
    for (let j = 0; j < N; j++) {
      const hv = matVec(A, v);
      v = v.map((x, i) => x - alpha * hv[i]);
      p = p.map((x, i) => x + v[i]);
      series.push(p.slice());
    }
    expect(r.series!.length).toBe(N + 1);
    for (let j = 0; j <= N; j++) expectClose(Array.from(await r.series![j].toArray()), series[j], 1e-5, `p_${j}`);
    expectClose(
      Array.from(await r.solution!.toArray()),
      p.map((x) => alpha * x),
      1e-5,
      'Neumann solution',
    );
    const cg = await new ConjugateGradientIFT({ iterations: n }).estimate({ ...input, intermediates: true });
    // Solve A x = b in float64 (Gaussian elimination on a copy).
    const x = solve(A, b);
    expectClose(Array.from(await cg.solution!.toArray()), x, 1e-4, 'CG solution');
    expect(cg.series).toBeUndefined();
    const plain = await new NeumannIFT({ iterations: N, alpha }).estimate(input);
    expect(plain.series).toBeUndefined();
    expect(plain.solution).toBeUndefined();
    expect(Array.from(await plain.hypergrad.toArray())).toEqual(Array.from(await r.hypergrad.toArray()));
    tree.dispose([r.hypergrad, r.solution!, ...r.series!, cg.hypergrad, cg.solution!, plain.hypergrad]);
    dispose();
  });

  it('with intermediates they leak nothing, and throwing (a diverging series) frees everything', async () => {
    const device = getDevice();
    const { input, dispose } = quadratic(device);
    await expectNoLeaks(async () => {
      const r = await new NeumannIFT({ iterations: 4, alpha: 0.3 }).estimate({ ...input, intermediates: true });
      const c = await new ConjugateGradientIFT({ iterations: 3 }).estimate({ ...input, intermediates: true });
      tree.dispose([r.hypergrad, r.solution!, ...r.series!, c.hypergrad, c.solution!]);
      await expect(new NeumannIFT({ iterations: 30, alpha: 5 }).estimate({ ...input, intermediates: true })).rejects.toThrow();
    }, device);
    dispose();
  });
});
