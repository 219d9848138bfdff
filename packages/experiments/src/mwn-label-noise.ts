/**
 * @file Experiment E3 `mwn-label-noise` (EvoGrad, Table 5 at small scale): Meta-Weight-Net on Fashion-MNIST 14×14
 * with 40% uniform label noise and a small clean meta set; baseline (plain cross-entropy) vs MWN trained online
 * with T1–T2 vs with EvoGrad (K = 2, Rademacher σ = 1e-3, τ = 0.05), meta-first as in Shu et al. The classifier is
 * the MLP 196-64-64-10; base SGD 0.1, momentum 0.9, Nesterov, weight decay 5e-4, ×0.1 at 60% and 80% of training.
 * λ: Adam 1e-3 without weight decay (EvoGrad's hypergradient is ~1e-5 of T1–T2's, so any L2 term on λ would
 * swamp it; Adam's scale invariance makes the tiny gradient usable; eps 1e-12 keeps it scale-free at that size).
 */
import { noGrad } from '@metagrad/autograd';
import { argmax, eq, sum, tensor, type Device } from '@metagrad/tensor';
import {
  Adam, FASHION_MNIST_MEAN, FASHION_MNIST_STD, SGD, balancedIndices, batchIterator, corruptLabels, disposeTree, downsample2x,
  normalise, type MetaWeightNetParams, type ParamTree,
} from '@metagrad/models';
import { loadFashionMnist } from '@metagrad/models/node';
import { OnlineTrainer } from '@metagrad/meta';
import { legacyRows, type ReportSection, type SectionResult } from './section';
import { groupedBars, lineChart, type Row } from './plots';
import { disposeBatch, estimatorFor, mlpClassifier, mwnProblem, uploadBatch, weightNet, type Classifier } from './mwn-label-noise-common';

export type E3Method = 'baseline' | 't1-t2' | 'evograd-k2';
export const E3_METHODS: readonly E3Method[] = ['baseline', 't1-t2', 'evograd-k2'];

export interface E3Config {
  train: number;
  meta: number;
  test: number;
  epochs: number;
  batch: number;
  noise: number;
  seeds: number[];
}
export const E3_FULL: E3Config = { train: 5000, meta: 500, test: 2000, epochs: 30, batch: 100, noise: 0.4, seeds: [0, 1] };
export const E3_QUICK: E3Config = { train: 1000, meta: 100, test: 1000, epochs: 4, batch: 100, noise: 0.4, seeds: [0] };

export interface E3Data {
  images: Float32Array;
  /** Noisy training labels. */
  labels: Int32Array;
  trueLabels: Int32Array;
  metaImages: Float32Array;
  metaLabels: Int32Array;
  testImages: Float32Array;
  testLabels: Int32Array;
}

/** Fashion-MNIST at 14×14, normalised: noisy training set, a balanced clean meta set from other images, a test set. */
export function loadE3Data(cfg: E3Config, seed: number): E3Data {
  const prep = (images: Float32Array) => normalise(downsample2x(images, 28, 28).images, FASHION_MNIST_MEAN, FASHION_MNIST_STD);
  const trainSplit = loadFashionMnist({ split: 'train', limit: cfg.train + 20000 });
  const test = loadFashionMnist({ split: 'test', limit: cfg.test });
  const all = prep(trainSplit.images);
  const per = 14 * 14;
  const images = all.slice(0, cfg.train * per);
  const trueLabels = trainSplit.labels.slice(0, cfg.train);
  const labels = corruptLabels(trueLabels, { kind: 'uniform', rate: cfg.noise, numClasses: 10, seed: 100 + seed });
  // The clean meta set comes from images the classifier never trains on (after the first cfg.train).
  const pool = trainSplit.labels.slice(cfg.train);
  const metaIdx = balancedIndices(pool, 10, Math.ceil(cfg.meta / 10), 200 + seed);
  const metaImages = new Float32Array(metaIdx.length * per);
  const metaLabels = new Int32Array(metaIdx.length);
  metaIdx.forEach((i, k) => {
    metaImages.set(all.subarray((cfg.train + i) * per, (cfg.train + i + 1) * per), k * per);
    metaLabels[k] = pool[i];
  });
  return { images, labels, trueLabels, metaImages, metaLabels, testImages: prep(test.images), testLabels: test.labels };
}

async function accuracy(c: Classifier, theta: ParamTree, images: Float32Array, labels: Int32Array, device: Device): Promise<number> {
  let correct = 0;
  for (let start = 0; start < labels.length; start += 500) {
    const rows = Array.from({ length: Math.min(500, labels.length - start) }, (_, i) => start + i);
    const b = uploadBatch(images, labels, rows, c.inputShape, device);
    const hits = noGrad(() => {
      const logits = c.model.apply(theta, b.x);
      const pred = argmax(logits, 1);
      const same = eq(pred, b.y);
      const n = sum(same);
      disposeTree([logits, pred, same]);
      return n;
    });
    correct += (await hits.toArray())[0];
    hits.dispose();
    disposeBatch(b);
  }
  return correct / labels.length;
}

/** The learned weighting function v(ℓ) on a grid of losses. */
async function weightCurve(lambda: MetaWeightNetParams, device: Device): Promise<{ loss: number; weight: number }[]> {
  const grid = Array.from({ length: 51 }, (_, i) => i * 0.2);
  const x = tensor(Float32Array.from(grid), [grid.length, 1], 'f32', device);
  const v = noGrad(() => weightNet.apply(lambda, x));
  const w = await v.toArray();
  disposeTree([x, v]);
  return grid.map((loss, i) => ({ loss, weight: w[i] }));
}

export interface E3Run {
  method: E3Method;
  seed: number;
  testAcc: number;
  /** Mean hypergradient norm over the run (NaN for the baseline). */
  meanHypergradNorm: number;
  curve: { loss: number; weight: number }[];
  seconds: number;
}

export async function runE3Method(method: E3Method, data: E3Data, cfg: E3Config, seed: number, device: Device, onStep?: () => void): Promise<E3Run> {
  const t0 = performance.now();
  const c = mlpClassifier(64);
  const problem = mwnProblem(c);
  const theta = c.model.init(10 + seed, device);
  const lambda = weightNet.init(20 + seed, device);
  const stepsPerEpoch = Math.floor(cfg.train / cfg.batch);
  const total = stepsPerEpoch * cfg.epochs;
  const lr = (step: number) => 0.1 * (step >= Math.round(0.6 * total) ? 0.1 : 1) * (step >= Math.round(0.8 * total) ? 0.1 : 1);
  const thetaOptimizer = new SGD(theta, { lr, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  const lambdaOptimizer = new Adam(lambda, { lr: 1e-3, eps: 1e-12 });
  const estimator = estimatorFor(method === 'evograd-k2' ? 'evograd-k2' : method, 1000 + seed);
  // The baseline trains on plain cross-entropy: the same loop with a weight net that is never used.
  const baselineProblem: typeof problem = { ...problem, trainLoss: (th, lm, b) => problem.valLoss(th, lm, b) };
  const trainer = new OnlineTrainer({
    problem: method === 'baseline' ? baselineProblem : problem,
    estimator, theta, lambda, thetaOptimizer, lambdaOptimizer, order: 'meta-first', innerLr: lr, device,
  });
  const trainIdx = batchIterator({ n: cfg.train, batchSize: cfg.batch, seed: 300 + seed, dropLast: true, epochs: cfg.epochs });
  const metaIdx = batchIterator({ n: data.metaLabels.length, batchSize: Math.min(cfg.batch, data.metaLabels.length), seed: 400 + seed, dropLast: true, epochs: Infinity });
  const norms: number[] = [];
  try {
    for (const rows of trainIdx) {
      const train = uploadBatch(data.images, data.labels, rows, c.inputShape, device);
      const val = uploadBatch(data.metaImages, data.metaLabels, metaIdx.next().value as Int32Array, c.inputShape, device);
      const log = await trainer.trainStep(train, val);
      if (Number.isFinite(log.hypergradNorm)) norms.push(log.hypergradNorm);
      disposeBatch(train);
      disposeBatch(val);
      onStep?.();
    }
    const testAcc = await accuracy(c, theta, data.testImages, data.testLabels, device);
    const curve = await weightCurve(lambda, device);
    return { method, seed, testAcc, meanHypergradNorm: norms.length ? norms.reduce((a, b) => a + b, 0) / norms.length : NaN, curve, seconds: (performance.now() - t0) / 1000 };
  } finally {
    thetaOptimizer.dispose();
    lambdaOptimizer.dispose();
    disposeTree([theta, lambda]);
  }
}

export interface E3Result {
  testAcc: { baseline: number; t1t2: number; evograd: number };
  testAccStd: { baseline: number; t1t2: number; evograd: number };
  runs: E3Run[];
  config: E3Config;
}

export async function runMwnLabelNoise(device: Device, cfg: E3Config, onStep?: () => void): Promise<E3Result> {
  const runs: E3Run[] = [];
  for (const seed of cfg.seeds) {
    const data = loadE3Data(cfg, seed);
    for (const method of E3_METHODS) runs.push(await runE3Method(method, data, cfg, seed, device, onStep));
  }
  const stat = (m: E3Method) => {
    const a = runs.filter((r) => r.method === m).map((r) => r.testAcc * 100);
    const mean = a.reduce((x, y) => x + y, 0) / a.length;
    return { mean, std: Math.sqrt(a.reduce((x, y) => x + (y - mean) ** 2, 0) / a.length) };
  };
  const [b, t, e] = E3_METHODS.map(stat);
  return { testAcc: { baseline: b.mean, t1t2: t.mean, evograd: e.mean }, testAccStd: { baseline: b.std, t1t2: t.std, evograd: e.std }, runs, config: cfg };
}

export const mwnLabelNoiseSection: ReportSection = {
  id: 'mwn-label-noise',
  title: 'E3: Meta-Weight-Net under 40% label noise — baseline vs T1–T2 vs EvoGrad',
  paperFigure: 'EvoGrad, Table 5 (Fashion-MNIST MLP instead of CIFAR ResNet-32)',
  async run(ctx): Promise<SectionResult> {
    const cfg = ctx.quick ? E3_QUICK : E3_FULL;
    const steps = Math.floor(cfg.train / cfg.batch) * cfg.epochs * E3_METHODS.length * cfg.seeds.length;
    const progress = ctx.progress(steps, 'online steps');
    let result: E3Result;
    try {
      result = await runMwnLabelNoise(ctx.device, cfg, () => progress.increment(1));
    } finally {
      progress.stop();
    }
    const { testAcc: a, testAccStd: s } = result;
    const gain = a.t1t2 - a.baseline;
    const gap = Math.abs(a.evograd - a.t1t2);
    const norms = (m: E3Method) => result.runs.filter((r) => r.method === m).map((r) => r.meanHypergradNorm);
    const meanOf = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
    const bars: Row[] = result.runs.map((r) => ({ method: r.method, seed: `seed ${r.seed}`, acc: r.testAcc * 100 }));
    // The baseline never trains its weight net: its curve is the initial one, kept as the reference.
    const curves: Row[] = result.runs.flatMap((r) => r.curve.map((p) => ({ ...p, method: r.method === 'baseline' ? 'initial' : r.method, seed: r.seed })));
    const fmt = (m: number, sd: number) => (result.config.seeds.length > 1 ? `${m.toFixed(2)} ± ${sd.toFixed(2)}` : m.toFixed(2));
    return {
      summary: legacyRows([
        { metric: 'test accuracy % baseline / T1–T2 / EvoGrad', value: `${fmt(a.baseline, s.baseline)} / ${fmt(a.t1t2, s.t1t2)} / ${fmt(a.evograd, s.evograd)}`, paper: '70.8 / 87.5 / 87.7 (CIFAR-10, 40%)', pass: null },
        { metric: 'T1–T2 − baseline (points)', value: gain, paper: '≥ 2', pass: gain >= 2 },
        { metric: '|EvoGrad − T1–T2| (points)', value: gap, paper: '≤ 1', pass: gap <= 1 },
        { metric: 'mean ‖hypergradient‖ EvoGrad / T1–T2', value: meanOf(norms('evograd-k2')) / meanOf(norms('t1-t2')), paper: '≈ σ²/(2τα) ~ 1e-4 (scaling note)', pass: null },
      ]),
      figures: [
        { name: 'accuracy', spec: groupedBars({ title: 'Test accuracy under 40% uniform label noise (%)', data: bars, category: { field: 'method', title: 'method' }, group: { field: 'seed', title: 'seed' }, color: { field: 'method', title: 'method' }, value: { field: 'acc', title: 'test accuracy (%)' }, width: 320 }) },
        { name: 'weighting-function', spec: lineChart({ title: 'Learned weighting function v(ℓ) (initial: the untrained net)', data: curves, x: { field: 'loss', title: 'training loss ℓ' }, y: { field: 'weight', title: 'weight v(ℓ)' }, series: { field: 'method', title: 'method' }, detail: { field: 'seed', title: 'seed' }, points: false }) },
      ],
      json: { testAcc: a, testAccStd: s, runs: result.runs.map(({ curve: _c, ...r }) => r), curves: result.runs.map((r) => ({ method: r.method, seed: r.seed, curve: r.curve })), config: cfg },
    };
  },
};
