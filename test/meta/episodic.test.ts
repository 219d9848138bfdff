/** @file The episodic outer loop: every method plugged in, its counters, Reptile, diagnostics and no leaks. */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, tensor, type Device } from '@metagrad/tensor';
import { expectNoLeaks } from '@metagrad/autograd';
import { disposeTree, mlp, Rng, type ParamTree } from '@metagrad/models';
import {
  DrMAD, EpisodicTrainer, HyperDistill, NeumannIFT, anilProblem, compareWithExact, firstOrderMethod, hyperDistillMethod,
  implicitMethod, offlineMethod, onlineReverseMethod, regressionBatchOps, treeToVector, type Episode, type HyperMethod, type RegressionBatch,
} from '@metagrad/meta';
import { useDevice } from '../helpers/device';

const getDevice = useDevice();
const features = mlp({ sizes: [1, 8], activation: 'relu', outputActivation: 'relu' });
const anil = anilProblem({ features: (l, x) => features.apply(l as never, x) });
const T = 4;
const B = 2;

function episode(device: Device, seed: number): Episode<RegressionBatch> {
  const rng = new Rng(seed);
  const mk = (n: number): RegressionBatch => {
    const x = rng.uniformArray(B * n, -5, 5);
    return { x: tensor(x, [B, n, 1], 'f32', device), y: tensor(x.map((v) => 2 * Math.sin(v - 1)), [B, n, 1], 'f32', device) };
  };
  const support = mk(5);
  const query = mk(5);
  return { trainBatches: Array.from({ length: T }, () => support), valBatch: query, dispose: () => [support, query].forEach(regressionBatchOps.dispose) };
}

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

function trainer(device: Device, method: HyperMethod<RegressionBatch>, logHypergradNorm = false) {
  const lambda = features.init(7, device) as unknown as ParamTree;
  const phi = { weight: tensor(new Rng(3).uniformArray(8, -0.3, 0.3), [1, 8, 1], 'f32', device), bias: tensor([0], [1, 1, 1], 'f32', device) };
  const tr = new EpisodicTrainer<RegressionBatch>({
    problem: anil, lambda, phi, method, optimiser: { lr: 0.01, momentum: 0.9 }, hyperLr: 1e-3, reptileLr: 1,
    initialWeights: (p) => anil.initialWeights(p, B), reptileTarget: (w) => anil.taskMean(w), logHypergradNorm,
  });
  return { tr, dispose: () => { tr.dispose(); disposeTree([lambda, phi] as ParamTree); } };
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

  it('Reptile with η = 1 moves φ to the task mean of w_T; λ moves with the hypergradients', async () => {
    const device = getDevice();
    const ep = episode(device, 2);
    const { tr, dispose } = trainer(device, firstOrderMethod(), true);
    const before = await treeToVector(tr.lambda);
    const phiBefore = await treeToVector(tr.phi);
    // The norm log is opt-in (it costs a readback per update).
    expect((await tr.runEpisode(ep)).hypergradNorm).toBeGreaterThan(0);
    const after = await treeToVector(tr.lambda);
    expect(after.some((v, i) => v !== before[i])).toBe(true);
    const phiAfter = await treeToVector(tr.phi);
    expect(phiAfter.some((v, i) => v !== phiBefore[i])).toBe(true);
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
    for (const r of rows) {
      expect(r.cosine).toBeGreaterThan(-1.0001);
      expect(r.cosine).toBeLessThan(1.0001);
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
      () => new EpisodicTrainer({ problem: anil, lambda, phi: lambda, method: firstOrderMethod(), optimiser: { lr: 0.01, momentum: 1 }, hyperLr: 1e-3, reptileLr: 1, initialWeights: (p) => p, reptileTarget: (w) => w }),
    ).toThrow(/momentum.*1/);
    expect(
      () => new EpisodicTrainer({ problem: anil, lambda, phi: lambda, method: firstOrderMethod(), optimiser: { lr: 0.01, momentum: 0 }, hyperLr: 1e-3, reptileLr: 2, initialWeights: (p) => p, reptileTarget: (w) => w }),
    ).toThrow(/reptileLr.*2/);
    disposeTree(lambda);
  });
});
