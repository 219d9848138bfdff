/** @file EvoGrad's options, noise, batching and scaling, the cosine diagnostic, and the online trainer (orders, logging, no leaks over 200 meta-steps). */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, tensor, type Device, type Tensor } from '@metagrad/tensor';
import { expectNoLeaks } from '@metagrad/autograd';
import { Adam, SGD, disposeTree, leaves, type ParamTree } from '@metagrad/models';
import {
  EvoGrad,
  OneStepLookahead,
  OnlineTrainer,
  UnrolledRMD,
  compareToReference,
  treeToVector,
  type ClassificationBatch,
  type HypergradInput,
} from '@metagrad/meta';
import { useDevice } from '../helpers/device';
import { classifier, problem, randomBatch, weightNet } from './mwn-fixture';

const getDevice = useDevice();

function setup(device: Device) {
  const theta = classifier.init(1, device);
  const lambda = weightNet.init(2, device);
  const trainBatch = randomBatch(device, 16, 1);
  const valBatch = randomBatch(device, 12, 2);
  const input: HypergradInput<ParamTree, ParamTree, ClassificationBatch> = {
    problem,
    theta,
    lambda,
    trainBatch,
    valBatch,
    innerLr: 0.1,
  };
  return {
    input,
    dispose: () => disposeTree([theta, lambda, trainBatch.x, trainBatch.y, valBatch.x, valBatch.y] as ParamTree),
  };
}

describe('EvoGrad options and noise', () => {
  it('rejects invalid settings with named errors that show the values', () => {
    const base = { K: 2, sigma: 1e-3, tau: 0.05, noise: 'rademacher' as const };
    expect(() => new EvoGrad({ ...base, K: 0 })).toThrow(InvalidArgumentError);
    expect(() => new EvoGrad({ ...base, K: 1.5 })).toThrow(/K must be an integer ≥ 1, got 1.5/);
    expect(() => new EvoGrad({ ...base, tau: 0 })).toThrow(/tau must be a finite number > 0, got 0/);
    expect(() => new EvoGrad({ ...base, tau: -1 })).toThrow(InvalidArgumentError);
    expect(() => new EvoGrad({ ...base, sigma: -0.1 })).toThrow(/sigma must be a finite number ≥ 0, got -0.1/);
    expect(() => new EvoGrad({ ...base, sigma: NaN })).toThrow(InvalidArgumentError);
    expect(() => new EvoGrad({ ...base, noise: 'uniform' as never })).toThrow(/noise must be/);
    expect(() => new EvoGrad({ ...base, K: 3, antithetic: true })).toThrow(/K must be even, got K = 3/);
    expect(() => new UnrolledRMD({ steps: 0 })).toThrow(InvalidArgumentError);
    expect(() => new UnrolledRMD({ steps: 3, truncate: 4 })).toThrow(/truncate must be an integer in \[1, steps=3\], got 4/);
    expect(() => new OnlineTrainer({ order: 'sideways' } as never)).toThrow(/order must be/);
  });

  it('rejects an invalid inner step size and mis-shaped explicit noise', async () => {
    const { input, dispose } = setup(getDevice());
    await expect(new OneStepLookahead().estimate({ ...input, innerLr: 0 })).rejects.toThrow(/innerLr must be a finite number > 0, got 0/);
    const e = new EvoGrad<ClassificationBatch>({ K: 3, sigma: 1e-3, tau: 0.05, noise: 'rademacher' });
    const wrong = e.sampleNoise(input.lambda);
    await expect(e.estimateWithNoise(input, wrong)).rejects.toThrow(InvalidArgumentError);
    disposeTree(wrong);
    dispose();
  });

  it('draws ±σ Rademacher noise, fresh each call, and exact ±ε pairs when antithetic', async () => {
    const { input, dispose } = setup(getDevice());
    const e = new EvoGrad<ClassificationBatch>({
      K: 4,
      sigma: 0.25,
      tau: 0.05,
      noise: 'rademacher',
      antithetic: true,
      seed: 9,
    });
    const a = e.sampleNoise(input.theta);
    const b = e.sampleNoise(input.theta);
    const va = await treeToVector(a);
    const vb = await treeToVector(b);
    expect(new Set(va)).toEqual(new Set([0.25, -0.25]));
    expect(Array.from(va)).not.toEqual(Array.from(vb));
    const w = leaves(a)[0];
    const rows = Array.from(await w.toArray());
    const per = w.size / 4;
    for (let i = 0; i < 2 * per; i++) expect(rows[i + 2 * per]).toBe(-rows[i]);
    const g = new EvoGrad<ClassificationBatch>({ K: 64, sigma: 0.5, tau: 1, noise: 'gaussian', seed: 1 }).sampleNoise(input.theta);
    const vg = await treeToVector(g);
    const std = Math.sqrt(vg.reduce((s, x) => s + x * x, 0) / vg.length);
    expect(std).toBeGreaterThan(0.45);
    expect(std).toBeLessThan(0.55);
    disposeTree([a, b, g]);
    dispose();
  });

  it('is deterministic for a seed and the batched forward equals the K-forward loop', async () => {
    const { input, dispose } = setup(getDevice());
    const opts = { K: 4, sigma: 0.05, tau: 0.1, noise: 'rademacher' as const, seed: 5 };
    const r1 = await new EvoGrad<ClassificationBatch>(opts).estimate(input);
    const r2 = await new EvoGrad<ClassificationBatch>({ ...opts, forward: 'loop' }).estimate(input);
    const v1 = await treeToVector(r1.hypergrad);
    const v2 = await treeToVector(r2.hypergrad);
    const scale = Math.max(...v1.map(Math.abs));
    expect(scale).toBeGreaterThan(0);
    v1.forEach((x, i) => expect(Math.abs(x - v2[i])).toBeLessThan(1e-4 * scale));
    expect(r1.stats.forwards).toBe(5);
    disposeTree([r1.hypergrad, r2.hypergrad]);
    dispose();
  });

  it('points along T1–T2 on average, scaled by σ²/(τα) with antithetic pairs (the cosine diagnostic)', async () => {
    // Weight-decay tuning of a linear regression: L_T = mean((Xw − y)²) + Σ exp(λ)·w², L_V = mean((X'w − y')²).
    // σ is small enough for the linearised expectation, and α small enough that T1–T2's ∇L_V(θ') ≈ ∇L_V(θ),
    // the point EvoGrad's θ* stays at; antithetic pairs make E[Σ ε_k ε_kᵀ]/K = σ²I exactly (no (K−1)/K).
    // (On Meta-Weight-Net the two differ by more than scale: T1–T2 differentiates through the detached loss
    // the weight net reads, EvoGrad through its value at θ_k, which includes that path.)
    const device = getDevice();
    const D = 5;
    const mk = (n: number, seed: number) => ({
      x: tensor(
        Float32Array.from({ length: n * D }, (_, i) => Math.sin(seed * 13.7 + i * 1.93)),
        [n, D],
        'f32',
        device,
      ),
      y: tensor(
        Float32Array.from({ length: n }, (_, i) => Math.cos(seed * 5.1 + i * 0.77)),
        [n, 1],
        'f32',
        device,
      ),
    });
    const train = mk(20, 1);
    const val = mk(20, 2);
    const { add, exp, matmul, mean, mul, square, sub, sum } = await import('@metagrad/autograd');
    type B = { x: Tensor; y: Tensor };
    const fit = (w: Tensor, b: B) => mean(square(sub(matmul(b.x, w), b.y)));
    const regression = {
      trainLoss: (th: ParamTree, lm: ParamTree, b: B) =>
        add(fit((th as { w: Tensor }).w, b), sum(mul(exp((lm as { l: Tensor }).l), square((th as { w: Tensor }).w)))),
      valLoss: (th: ParamTree, _lm: ParamTree, b: B) => fit((th as { w: Tensor }).w, b),
    };
    const theta = {
      w: tensor(
        Float32Array.from({ length: D }, (_, i) => 0.5 - 0.3 * i),
        [D, 1],
        'f32',
        device,
      ),
    };
    const lambda = {
      l: tensor(
        Float32Array.from({ length: D }, (_, i) => -1 + 0.2 * i),
        [D, 1],
        'f32',
        device,
      ),
    };
    const input = { problem: regression, theta, lambda, trainBatch: train, valBatch: val, innerLr: 1e-3 };
    const sigma = 0.002;
    const tau = 0.1;
    const K = 4;
    const evo = new EvoGrad<B>({ K, sigma, tau, noise: 'rademacher', antithetic: true, seed: 11 });
    const cmp = await compareToReference(evo, new OneStepLookahead<B>(), input, 100);
    expect(cmp.cosine).toBeGreaterThan(0.9);
    expect(cmp.sampleCosines.length).toBe(100);
    const predicted = sigma ** 2 / tau / input.innerLr;
    expect(cmp.normRatio).toBeGreaterThan(predicted * 0.8);
    expect(cmp.normRatio).toBeLessThan(predicted * 1.25);
    disposeTree([theta.w, lambda.l, train.x, train.y, val.x, val.y]);
  });
});

describe('OnlineTrainer', () => {
  async function trainer(
    device: Device,
    order: 'meta-first' | 'base-first',
    estimator = new EvoGrad<ClassificationBatch>({ K: 2, sigma: 1e-3, tau: 0.05, noise: 'rademacher', seed: 3 }),
  ) {
    const theta = classifier.init(1, device);
    const lambda = weightNet.init(2, device);
    const thetaOptimizer = new SGD(theta, { lr: 0.1, momentum: 0.9 });
    const lambdaOptimizer = new Adam(lambda, { lr: 1e-2 });
    const t = new OnlineTrainer({
      problem,
      estimator,
      theta,
      lambda,
      thetaOptimizer,
      lambdaOptimizer,
      order,
      innerLr: 0.1,
    });
    return {
      t,
      theta,
      lambda,
      dispose: () => {
        thetaOptimizer.dispose();
        lambdaOptimizer.dispose();
        disposeTree([theta, lambda]);
      },
    };
  }

  it('logs losses, norms, memory and time; the order decides which θ the meta step sees', async () => {
    const device = getDevice();
    const train = randomBatch(device, 16, 1);
    const val = randomBatch(device, 12, 2);
    const logs: Record<string, number> = {};
    for (const order of ['meta-first', 'base-first'] as const) {
      const { t, dispose } = await trainer(device, order, new OneStepLookahead<ClassificationBatch>() as never);
      const log = await t.trainStep(train, val);
      expect(log.step).toBe(0);
      for (const k of ['trainLoss', 'valLoss', 'hypergradNorm', 'gradNorm', 'peakBytes', 'metaPeakBytes', 'ms', 'metaMs'] as const) {
        expect(Number.isFinite(log[k]), k).toBe(true);
      }
      expect(log.hypergradNorm).toBeGreaterThan(0);
      expect(log.peakBytes).toBeGreaterThan(0);
      logs[order] = log.valLoss;
      dispose();
    }
    // Meta-first judges the initial θ, base-first the θ after one step: different validation losses.
    expect(logs['meta-first']).not.toBeCloseTo(logs['base-first'], 6);
    disposeTree([train.x, train.y, val.x, val.y]);
  });

  it('runs 200 EvoGrad meta-steps without leaking and reduces the training loss', async () => {
    const device = getDevice();
    const train = randomBatch(device, 16, 1);
    const val = randomBatch(device, 12, 2);
    const { t, dispose } = await trainer(device, 'meta-first');
    await t.trainStep(train, val); // warm-up: optimiser buffers and pipelines exist before the window
    await expectNoLeaks(
      async () => {
        for (let i = 0; i < 200; i++) await t.trainStep(train, val);
      },
      device,
      '200 online EvoGrad steps',
    );
    expect(t.log.length).toBe(201);
    expect(t.log[200].trainLoss).toBeLessThan(t.log[0].trainLoss);
    dispose();
    disposeTree([train.x, train.y, val.x, val.y]);
  });
});
