/** @file The episodic outer loop: every method plugged in, its counters, Reptile, diagnostics and no leaks. */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, type Device } from '@metagrad/tensor';
import { expectNoLeaks } from '@metagrad/autograd';
import { disposeTree, type ParamTree } from '@metagrad/models';
import {
  DrMAD,
  EpisodicTrainer,
  HyperDistill,
  NeumannIFT,
  compareWithExact,
  firstOrderMethod,
  hyperDistillMethod,
  implicitMethod,
  offlineMethod,
  onlineReverseMethod,
  treeToVector,
  type Episode,
  type HyperMethod,
  type RegressionBatch,
} from '@metagrad/meta';
import { useDevice } from '../helpers/device';
import { B, anil, anilTrainer, features, sinusoidEpisode } from './anil-fixture';

const getDevice = useDevice();
const T = 4;

const episode = (device: Device, seed: number): Episode<RegressionBatch> => sinusoidEpisode(device, seed, T);

function methods(): HyperMethod<RegressionBatch>[] {
  return [
    firstOrderMethod(),
    hyperDistillMethod(new HyperDistill({ gamma: 0, estimationPeriod: 1, theta: 1 }), '1-step'),
    hyperDistillMethod(new HyperDistill({ gamma: 0.9, estimationPeriod: 2 })),
    offlineMethod(new DrMAD(), 'DrMAD'),
    implicitMethod(new NeumannIFT({ iterations: 3 }), 2, 'Neumann'),
    onlineReverseMethod(),
    onlineReverseMethod({ horizon: 2 }),
    onlineReverseMethod({ horizon: 1 }),
  ];
}

function trainer(device: Device, method: HyperMethod<RegressionBatch>, logHypergradNorm = false, reptileLr = 1) {
  return anilTrainer(device, method, { hyperLr: 1e-3, reptileLr, logHypergradNorm });
}

describe('episodic meta-learning', () => {
  it('runs every method, counts its JVPs/HVPs per inner optimisation and applies Reptile; no leaks', async () => {
    const device = getDevice();
    const ep = episode(device, 1);
    await expectNoLeaks(async () => {
      const records: Record<string, { jvps: number; hvps: number; updates: number; fitJvps: number; hypergradNorm?: number }[]> = {};
      for (const method of methods()) {
        const { tr, dispose } = trainer(device, method);
        records[method.name] = [];
        for (let m = 0; m < 3; m++) {
          const r = await tr.runEpisode(ep);
          expect(Number.isFinite(r.valLoss)).toBe(true);
          expect(r.peakBytes).toBeGreaterThan(0);
          records[method.name].push(r);
        }
        dispose();
      }
      expect(records.FO[0]).toMatchObject({ jvps: 0, updates: T });
      expect(records.FO[0].hypergradNorm).toBeUndefined();
      expect(records['1-step'][0]).toMatchObject({ jvps: T, updates: T, fitJvps: 0 });
      const hd = records['hyperdistill(γ=0.9)'];
      expect(hd.map((r) => r.fitJvps)).toEqual([3 * T - 1, 0, 3 * T - 1]);
      expect(hd[1]).toMatchObject({ jvps: T, updates: T });
      expect(records.DrMAD[0]).toMatchObject({ jvps: 2 * T - 1, updates: 1 });
      expect(records.Neumann[0]).toMatchObject({ jvps: 2, hvps: 6, updates: 2 });
      // Online RMD: 2k − 1 JVPs at a window of k steps, so T² over the whole horizon.
      expect(records['RMD online'][0]).toMatchObject({ jvps: T * T, updates: T });
      expect(records['RMD online (K=2)'][0]).toMatchObject({ jvps: 1 + 3 * (T - 1), updates: T });
    }, device);
    ep.dispose();
  });

  it('Reptile moves φ to φ + η (mean_tasks w_T − φ), with w_T from the inner loop recomputed on the host; λ moves with the hypergradients', async () => {
    const device = getDevice();
    const ep = episode(device, 2);
    const eta = 0.5;
    // An offline method updates λ only after the inner loop, so w_T depends on the initial λ alone.
    const { tr, dispose } = trainer(device, offlineMethod(new DrMAD(), 'DrMAD'), true, eta);
    const before = await treeToVector(tr.lambda);
    const phiBefore = await treeToVector(tr.phi); // weight [1, 8, 1] then bias [1, 1, 1]
    const [x, y] = [Array.from(await ep.trainBatches[0].x.toArray()), Array.from(await ep.trainBatches[0].y.toArray())];
    // The norm log is opt-in (it costs a readback per update).
    expect((await tr.runEpisode(ep)).hypergradNorm).toBeGreaterThan(0);
    const after = await treeToVector(tr.lambda);
    expect(after.some((v, i) => v !== before[i])).toBe(true);
    const phiAfter = await treeToVector(tr.phi);
    const wT = innerLoopOnHost(before, phiBefore, x, y);
    const want = phiBefore.map((p, i) => p + eta * (wT[i] - p));
    // Measured 1.2e-8 (llvmpipe and SwiftShader); tolerance 1e-6 (f32 over 4 steps of a 9-parameter head).
    const worst = Math.max(...want.map((w, i) => Math.abs(phiAfter[i] - w)));
    expect(worst, `φ after Reptile ${Array.from(phiAfter)} vs host ${want}`).toBeLessThan(1e-6);
    dispose();
    ep.dispose();
  });

  it('compares each method with the exact unrolled hypergradient', async () => {
    const device = getDevice();
    const ep = episode(device, 3);
    const { tr, dispose } = trainer(device, firstOrderMethod());
    const ms = methods();
    const w0 = anil.initialWeights(tr.phi, B);
    const { rows, exactNorm } = await compareWithExact(tr.context(ep, w0), ms);
    expect(exactNorm).toBeGreaterThan(0);
    // Measured on this fixed problem (llvmpipe and SwiftShader agree to 1e-15): [cosine, norm ratio, second-order
    // cosine, second-order norm ratio] against the exact unrolled hypergradient. The values move by ~1e-6 with f32
    // rounding; tolerance 1e-3, so a 1% change of an estimate's scale (norm ratio) or of its direction fails.
    const measured: Record<string, [number, number, number, number]> = {
      FO: [0.966093, 1.129343, 0, 0],
      '1-step': [0.977726, 1.108396, 0.91692, 0.212792],
      'hyperdistill(γ=0.9)': [0.994834, 1.067457, 0.965359, 0.65093],
      DrMAD: [0.999939, 0.999843, 0.99938, 1.008169],
      Neumann: [0.989212, 1.071655, 0.873042, 0.618063],
      'RMD online': [1, 1, 1, 1],
      'RMD online (K=2)': [0.990579, 1.077254, 0.955023, 0.515074],
      'RMD online (K=1)': [0.977726, 1.108396, 0.91692, 0.212792],
    };
    expect(rows.map((r) => r.name)).toEqual(Object.keys(measured));
    for (const r of rows) {
      const got = [r.cosine, r.normRatio, r.cosineSecondOrder, r.normRatioSecondOrder];
      got.forEach((g, i) => expect(Math.abs(g - measured[r.name][i]), `${r.name} [${got.join(', ')}]`).toBeLessThan(1e-3));
      expect(Math.abs(r.cosine)).toBeLessThanOrEqual(1 + 1e-6);
    }
    expect(rows.find((r) => r.name === 'FO')!.cosineSecondOrder).toBe(0);
    // FO has no second-order part; every other method has one of finite, nonzero size.
    expect(rows.find((r) => r.name === 'FO')!.normRatioSecondOrder).toBe(0);
    for (const r of rows.filter((x) => x.name !== 'FO')) {
      expect(Number.isFinite(r.normRatioSecondOrder) && r.normRatioSecondOrder > 0).toBe(true);
    }
    // The one-step look-ahead's second-order part points roughly along the exact one on this smooth problem.
    const oneStep = rows.find((r) => r.name === '1-step')!;
    expect(oneStep.cosineSecondOrder).toBeGreaterThan(0);
    // Online RMD over the whole horizon is the exact hypergradient at t = T; over one step it is the look-ahead.
    const full = rows.find((r) => r.name === 'RMD online')!;
    expect(full.cosine).toBeGreaterThan(0.9999);
    expect(full.normRatio).toBeCloseTo(1, 3);
    const k1 = rows.find((r) => r.name === 'RMD online (K=1)')!;
    expect(k1.cosine).toBeCloseTo(oneStep.cosine, 4);
    expect(k1.normRatio).toBeCloseTo(oneStep.normRatio, 4);
    disposeTree(w0);
    ms.forEach((m) => m.dispose?.());
    dispose();
    ep.dispose();
  });

  it('rejects invalid settings', () => {
    const device = getDevice();
    expect(() => implicitMethod(new NeumannIFT({ iterations: 1 }), 0, 'x')).toThrow(InvalidArgumentError);
    expect(() => onlineReverseMethod({ horizon: 0 })).toThrow(/horizon.*0/);
    expect(() => onlineReverseMethod({ horizon: 2.5 })).toThrow(InvalidArgumentError);
    const lambda = features.init(1, device) as unknown as ParamTree;
    expect(
      () =>
        new EpisodicTrainer({
          problem: anil,
          lambda,
          phi: lambda,
          method: firstOrderMethod(),
          optimiser: { lr: 0.01, momentum: 1 },
          hyperLr: 1e-3,
          reptileLr: 1,
          initialWeights: (p) => p,
          reptileTarget: (w) => w,
        }),
    ).toThrow(/momentum.*1/);
    expect(
      () =>
        new EpisodicTrainer({
          problem: anil,
          lambda,
          phi: lambda,
          method: firstOrderMethod(),
          optimiser: { lr: 0.01, momentum: 0 },
          hyperLr: 1e-3,
          reptileLr: 2,
          initialWeights: (p) => p,
          reptileTarget: (w) => w,
        }),
    ).toThrow(/reptileLr.*2/);
    const trainer = new EpisodicTrainer({
      problem: anil,
      lambda,
      phi: lambda,
      method: firstOrderMethod(),
      optimiser: { lr: 0.01, momentum: 0 },
      hyperLr: 1e-3,
      reptileLr: 1,
      initialWeights: (p) => p,
      reptileTarget: (w) => w,
    });
    expect(() => trainer.setHyperLr(-1e-3)).toThrow(/hyperLr must be > 0, got -0.001/);
    expect(() => trainer.setHyperLr(Number.NaN)).toThrow(InvalidArgumentError);
    trainer.setHyperLr(5e-4);
    trainer.dispose();
    disposeTree(lambda);
  });
});

/**
 * w_T of the inner loop in float64 on the host, reduced to what Reptile needs: the task mean of the B heads
 * (weight [8] then bias), after T steps of torch's heavy-ball SGD (lr 0.01, μ = 0.9; buffer = first gradient) on
 * Σ_tasks mean_n (f(x)·w + c − y)² with features f = relu(x·W₁ᵀ + b₁) from λ = [W₁ (8×1), b₁ (8)] held constant.
 */
function innerLoopOnHost(lambda: Float64Array, phi: Float64Array, x: number[], y: number[]): number[] {
  const h = 8;
  const n = x.length / B;
  const heads = Array.from({ length: B }, () => Array.from(phi));
  const bufs: (number[] | null)[] = Array.from({ length: B }, () => null);
  const features = (v: number) => Array.from({ length: h }, (_, j) => Math.max(0, v * lambda[j] + lambda[h + j]));
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < B; b++) {
      const w = heads[b];
      const g = new Array(h + 1).fill(0);
      for (let i = 0; i < n; i++) {
        const f = features(x[b * n + i]);
        const r = f.reduce((s, fj, j) => s + fj * w[j], w[h]) - y[b * n + i];
        f.forEach((fj, j) => (g[j] += (2 / n) * r * fj));
        g[h] += (2 / n) * r;
      }
      const prev = bufs[b];
      const buf = prev ? prev.map((v, k) => 0.9 * v + g[k]) : g;
      bufs[b] = buf;
      heads[b] = w.map((v, k) => v - 0.01 * buf[k]);
    }
  }
  return Array.from({ length: h + 1 }, (_, k) => heads.reduce((s, w) => s + w[k], 0) / B);
}
