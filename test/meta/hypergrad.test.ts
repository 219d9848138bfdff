/** @file Online hypergradient estimators against PyTorch float64 golden fixtures (test/fixtures/gen_hypergrad.py) and finite differences. */
import { describe, expect, it } from 'vitest';
import { tensor } from '@metagrad/tensor';
import { expectNoLeaks } from '@metagrad/autograd';
import { disposeTree, sgd, type MetaWeightNetParams, type MlpParams } from '@metagrad/models';
import { EvoGrad, FirstOrder, OneStepLookahead, UnrolledRMD, treeToVector, type ClassificationBatch, type HypergradEstimator } from '@metagrad/meta';
import { useDevice } from '../helpers/device';
import type { FixtureTensor } from '../helpers/fixture-json';
import { type MwnInput, hypergradFixture as fx, mwnHypergradSetup as setup, mwnProblem as problem } from '../helpers/mwn-hypergrad-fixture';

const getDevice = useDevice();

const loopProblem = { trainLoss: problem.trainLoss, valLoss: problem.valLoss };

/** Max |a − b| / max(|b|) over the flattened hypergradient. */
function relErr(got: Float64Array, want: FixtureTensor[]): number {
  const flat = want.flatMap((a) => a.data);
  const scale = Math.max(...flat.map(Math.abs));
  return Math.max(...flat.map((w, i) => Math.abs(got[i] - w))) / scale;
}

async function run(estimator: HypergradEstimator<ClassificationBatch>, input: MwnInput) {
  const r = await estimator.estimate(input);
  const v = await treeToVector(r.hypergrad);
  disposeTree(r.hypergrad);
  return { v, valLoss: r.valLoss };
}

describe('hypergradient estimators vs PyTorch (Meta-Weight-Net problem, float64 reference)', () => {
  it('T1–T2 (one-step look-ahead) matches torch', async () => {
    const { input, dispose } = setup(getDevice());
    const want = fx.cases.t1t2;
    const { v, valLoss } = await run(new OneStepLookahead(), input);
    // Measured 8.5e-8 (llvmpipe), 3.4e-8 (SwiftShader); tolerance 2e-6.
    expect(relErr(v, want.hypergrad)).toBeLessThan(2e-6);
    expect(valLoss).toBeCloseTo(want.valLoss, 5);
    dispose();
  });

  it('EvoGrad with given perturbations matches torch, batched and looped forwards alike', async () => {
    const { input, noiseOf, dispose } = setup(getDevice());
    // Measured: k3 2.6e-6 (llvmpipe and SwiftShader), k2_paper 4.1e-5 (llvmpipe) and 5.0e-5 (SwiftShader): σ = 1e-3,
    // so the perturbed losses differ by ~1e-3 and f32 rounding of each costs ~1e-5 relative. Tolerances 4–8× that.
    for (const [name, tol] of [
      ['evograd_k3', 2e-5],
      ['evograd_k2_paper', 2e-4],
    ] as const) {
      const c = fx.cases[name];
      const noise = noiseOf(name);
      const batched = new EvoGrad<ClassificationBatch>({ K: c.K!, sigma: c.sigma!, tau: c.tau!, noise: 'rademacher' });
      const r1 = await batched.estimateWithNoise(input, noise);
      const r2 = await new EvoGrad<ClassificationBatch>({
        K: c.K!,
        sigma: c.sigma!,
        tau: c.tau!,
        noise: 'rademacher',
      }).estimateWithNoise({ ...input, problem: loopProblem }, noise);
      const v1 = await treeToVector(r1.hypergrad);
      const v2 = await treeToVector(r2.hypergrad);
      expect(relErr(v1, c.hypergrad), name).toBeLessThan(tol);
      expect(relErr(v2, c.hypergrad), name).toBeLessThan(tol);
      expect(r1.valLoss).toBeCloseTo(c.valLoss, 5);
      disposeTree([r1.hypergrad, r2.hypergrad, noise]);
    }
    dispose();
  });

  it('UnrolledRMD through SGD-momentum matches torch, exact and truncated; one plain step equals T1–T2', async () => {
    const { input, dispose } = setup(getDevice());
    for (const name of ['unrolled_3', 'unrolled_3_trunc1', 'unrolled_1_plain']) {
      const c = fx.cases[name];
      const optimizer = sgd({ lr: fx.innerLr, momentum: c.momentum });
      const { v, valLoss } = await run(new UnrolledRMD({ steps: c.steps!, truncate: c.truncate, optimizer }), input);
      // Measured ≤ 2.4e-7 (llvmpipe), ≤ 3.4e-7 (SwiftShader); tolerance 3e-6.
      expect(relErr(v, c.hypergrad), name).toBeLessThan(3e-6);
      expect(valLoss).toBeCloseTo(c.valLoss, 4);
    }
    const plain = await run(new UnrolledRMD({ steps: 1 }), input);
    expect(relErr(plain.v, fx.cases.t1t2.hypergrad)).toBeLessThan(2e-6);
    dispose();
  });

  it('UnrolledRMD agrees with central finite differences of the unrolled validation loss', async () => {
    const device = getDevice();
    const { input, dispose } = setup(device);
    const estimator = new UnrolledRMD<ClassificationBatch>({ steps: 3 });
    const { v } = await run(estimator, input);
    // F(λ) = L_V(θ_3(λ)): the estimator's reported validation loss is exactly that value.
    const direction = fx.lambda.map((a, i) => Float32Array.from(a.data, (_, j) => Math.sin(7 * i + 3 * j + 1)));
    const flatDir = Float64Array.from(direction.flatMap((d) => Array.from(d)));
    const F = async (h: number) => {
      const shifted = fx.lambda.map((a, i) =>
        tensor(
          Float32Array.from(a.data, (x, j) => x + h * direction[i][j]),
          a.shape,
          'f32',
          device,
        ),
      );
      const lambda = { fc1: { weight: shifted[0], bias: shifted[1] }, fc2: { weight: shifted[2], bias: shifted[3] } };
      const r = await estimator.estimate({ ...input, lambda });
      disposeTree([r.hypergrad, lambda]);
      return r.valLoss;
    };
    // Richardson's extrapolation of central differences at h and h/2 cancels the O(h²) term: a plain central
    // difference at h = 0.02 is 2.6e-3 off (relative) from curvature alone, which hid a hypergradient scaled by 0.85.
    const central = async (h: number) => ((await F(h)) - (await F(-h))) / (2 * h);
    const h = 2e-2;
    const fd = (4 * (await central(h / 2)) - (await central(h))) / 3;
    const analytic = flatDir.reduce((s, d, i) => s + d * v[i], 0);
    // Measured 1.5e-5 relative on llvmpipe, 9.1e-5 on SwiftShader; F ≈ 0.99 is rounded to f32 (ulp 6e-8), so the
    // stencil's noise floor is ~(4/3)·2·6e-8/(2·0.01) ≈ 8e-6 ≈ 6e-4 of |analytic| = 0.0129. Tolerance 2e-3 relative
    // (≈ 3× that floor, 22× the worst measurement); a hypergradient scaled by 1.01 fails.
    expect(Math.abs(fd - analytic)).toBeLessThan(2e-3 * Math.abs(analytic));
    dispose();
  });

  it('FirstOrder is zero without a direct term; EvoGrad with K = 1 gives the direct term only', async () => {
    const { input, dispose } = setup(getDevice());
    const fo = await run(new FirstOrder(), input);
    expect(Math.max(...fo.v.map(Math.abs))).toBe(0);
    const k1 = await run(new EvoGrad({ K: 1, sigma: 0.1, tau: 0.05, noise: 'gaussian', seed: 3 }), input);
    expect(Math.max(...k1.v.map(Math.abs))).toBe(0);
    // With a direct term (an L2 penalty on λ in L_V) and σ = 0, K = 1 reproduces FirstOrder exactly.
    const { sum, square, add } = await import('@metagrad/autograd');
    const direct = {
      ...problem,
      valLoss: (th: MlpParams, lm: MetaWeightNetParams, b: ClassificationBatch) => {
        const w = lm.fc1.weight;
        return add(problem.valLoss(th, lm, b), sum(square(w)));
      },
    };
    const foD = await run(new FirstOrder(), { ...input, problem: direct });
    const k1D = await run(new EvoGrad({ K: 1, sigma: 0, tau: 0.05, noise: 'rademacher' }), {
      ...input,
      problem: direct,
    });
    expect(Math.max(...foD.v.map(Math.abs))).toBeGreaterThan(0);
    expect(Array.from(k1D.v)).toEqual(Array.from(foD.v));
    dispose();
  });

  it('every estimator frees what it allocates', async () => {
    const device = getDevice();
    const { input, dispose } = setup(device);
    const estimators: HypergradEstimator<ClassificationBatch>[] = [
      new FirstOrder(),
      new OneStepLookahead(),
      new EvoGrad({ K: 4, sigma: 1e-3, tau: 0.05, noise: 'rademacher', antithetic: true }),
      new EvoGrad({ K: 2, sigma: 1e-3, tau: 0.05, noise: 'gaussian', forward: 'loop' }),
      new UnrolledRMD({ steps: 3, truncate: 2, optimizer: sgd({ lr: 0.1, momentum: 0.9 }) }),
    ];
    for (const e of estimators) {
      await run(e, input); // warm caches (pipelines, pools) first
      await expectNoLeaks(async () => void (await run(e, input)), device, e.name);
    }
    dispose();
  });
});
