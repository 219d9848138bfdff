/**
 * @file Experiment E3 `mwn-label-noise` (EvoGrad, Table 5 at small scale): Meta-Weight-Net on Fashion-MNIST 14×14
 * with 40% uniform label noise and a small clean meta set; baseline (plain cross-entropy) vs MWN trained online
 * with T1–T2 vs with EvoGrad (K = 2, Rademacher σ = 1e-3, τ = 0.05), meta-first as in Shu et al. The classifier is
 * the MLP 196-h-h-10 (h = 256 full, 64 quick); base SGD 0.1, momentum 0.9, Nesterov, weight decay 5e-4, ×0.1 at
 * epochs 40 and 50 of 60 (quick: 60 % and 80 % of 4); example weights normalised per batch (v/Σv) as in the authors' code.
 * λ: Adam 1e-3 without weight decay (EvoGrad's hypergradient is ~1e-5 of T1–T2's, so any L2 term on λ would
 * swamp it; Adam's scale invariance makes the tiny gradient usable; eps 1e-12 keeps it scale-free at that size).
 */
import { noGrad } from '@metagrad/autograd';
import { tensor, type Device } from '@metagrad/tensor';
import {
  Adam,
  FASHION_MNIST_MEAN,
  FASHION_MNIST_STD,
  SGD,
  balancedIndices,
  batchIterator,
  corruptLabels,
  disposeTree,
  downsample2x,
  normalise,
  type MetaWeightNetParams,
} from '@metagrad/models';
import { loadFashionMnist } from '@metagrad/models/node';
import { OnlineTrainer } from '@metagrad/meta';
import { seeded, type SectionResult, type SummaryRow } from './section';
import { allPairs, findPair, formatInterval, intervalJson, markBand, markGoal, meanInterval, type PairDiff } from './intervals';
import { groupedBars, lineChart, type Row } from './plots';
import { classificationHits, disposeBatch, estimatorFor, mlpClassifier, mwnProblem, uploadBatch, weightNet } from './mwn-label-noise-common';

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
  /** The MLP's hidden width (196-h-h-10). */
  hidden: number;
  /** Epochs (may be fractional) after which the base learning rate falls ×0.1. */
  lrDecayEpochs: number[];
  /** Per-batch weight normalisation Σ v_i ℓ_i / Σ v_i (the authors' code) instead of mean(v·ℓ). */
  normalizeWeights: boolean;
  /** λ's Adam learning rate for each method (default 1e-3; EvoGrad's is tuned on a validation split, scripts/e3-tune.ts). */
  lambdaLr?: Partial<Record<E3Method, number>>;
}
/**
 * The issue-18 set-up in which the baseline memorises the noise: MLP-256, 60 epochs, lr ×0.1 at epochs 40 and 50,
 * a 1000-image clean meta set, per-batch weight normalisation, 3 seeds, 5000 training images. A seed at 3000 images
 * took 187 s on the 2-core llvmpipe machine (baseline 21 s, T1–T2 74 s, EvoGrad 90 s), so the set was not reduced;
 * (an earlier timing beside two other runs, 16.8 s per epoch, was contention).
 */
export const E3_FULL: E3Config = {
  train: 5000,
  meta: 1000,
  test: 2000,
  epochs: 60,
  batch: 100,
  noise: 0.4,
  seeds: [0, 1, 2],
  hidden: 256,
  lrDecayEpochs: [40, 50],
  normalizeWeights: true,
  // EvoGrad keeps λ lr 1e-3. On 2000 clean held-out training images (scripts/e3-tune.ts, seed 100) 3e-3 was best
  // (final validation accuracy 71.9 / 74.3 / 81.1 / 71.8 % at 1e-4 / 1e-3 / 3e-3 / 1e-2), but at 3e-3 one of the
  // three report seeds collapsed to chance accuracy at epoch ~24 (results/mwn-label-noise/evograd-lr3e-3).
};
/** As before issue 18 (MLP-64, decay at 60 % and 80 % of 4 epochs), with the weight normalisation. */
export const E3_QUICK: E3Config = {
  train: 1000,
  meta: 100,
  test: 1000,
  epochs: 4,
  batch: 100,
  noise: 0.4,
  seeds: [0],
  hidden: 64,
  lrDecayEpochs: [2.4, 3.2],
  normalizeWeights: true,
};

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
  /** Test accuracy after the last epoch (the final accuracy). */
  testAcc: number;
  /** Test accuracy after each epoch; its maximum is the best-epoch accuracy. */
  accByEpoch: number[];
  /** Per test image, 1 where the final model is right: final-accuracy pairs resample seeds and the shared images. */
  finalCorrect?: number[];
  /** Mean hypergradient norm over the run (NaN for the baseline). */
  meanHypergradNorm: number;
  curve: { loss: number; weight: number }[];
  seconds: number;
}

export async function runE3Method(method: E3Method, data: E3Data, cfg: E3Config, seed: number, device: Device, onStep?: () => void): Promise<E3Run> {
  const t0 = performance.now();
  const c = mlpClassifier(cfg.hidden);
  const problem = mwnProblem(c, { normalizeWeights: cfg.normalizeWeights });
  const theta = c.model.init(10 + seed, device);
  const lambda = weightNet.init(20 + seed, device);
  const stepsPerEpoch = Math.floor(cfg.train / cfg.batch);
  const milestones = cfg.lrDecayEpochs.map((e) => Math.round(e * stepsPerEpoch));
  const lr = (step: number) => milestones.reduce((rate, at) => (step >= at ? rate * 0.1 : rate), 0.1);
  const thetaOptimizer = new SGD(theta, { lr, momentum: 0.9, nesterov: true, weightDecay: 5e-4 });
  const lambdaOptimizer = new Adam(lambda, { lr: cfg.lambdaLr?.[method] ?? 1e-3, eps: 1e-12 });
  const estimator = estimatorFor(method === 'evograd-k2' ? 'evograd-k2' : method, 1000 + seed);
  // The baseline trains on plain cross-entropy: the same loop with a weight net that is never used.
  const baselineProblem: typeof problem = { ...problem, trainLoss: (th, lm, b) => problem.valLoss(th, lm, b) };
  const trainer = new OnlineTrainer({
    problem: method === 'baseline' ? baselineProblem : problem,
    estimator,
    theta,
    lambda,
    thetaOptimizer,
    lambdaOptimizer,
    order: 'meta-first',
    innerLr: lr,
    device,
  });
  const trainIdx = batchIterator({
    n: cfg.train,
    batchSize: cfg.batch,
    seed: 300 + seed,
    dropLast: true,
    epochs: cfg.epochs,
  });
  const metaIdx = batchIterator({
    n: data.metaLabels.length,
    batchSize: Math.min(cfg.batch, data.metaLabels.length),
    seed: 400 + seed,
    dropLast: true,
    epochs: Infinity,
  });
  const norms: number[] = [];
  const accByEpoch: number[] = [];
  let step = 0;
  try {
    for (const rows of trainIdx) {
      const train = uploadBatch(data.images, data.labels, rows, c.inputShape, device);
      const val = uploadBatch(data.metaImages, data.metaLabels, metaIdx.next().value as Int32Array, c.inputShape, device);
      const log = await trainer.trainStep(train, val);
      if (Number.isFinite(log.hypergradNorm)) norms.push(log.hypergradNorm);
      disposeBatch(train);
      disposeBatch(val);
      onStep?.();
      if (++step % stepsPerEpoch === 0 && step < stepsPerEpoch * cfg.epochs)
        accByEpoch.push((await classificationHits((x) => c.model.apply(theta, x), data.testImages, data.testLabels, c.inputShape, device)).acc);
    }
    const last = await classificationHits((x) => c.model.apply(theta, x), data.testImages, data.testLabels, c.inputShape, device);
    if (step % stepsPerEpoch === 0) accByEpoch.push(last.acc);
    const testAcc = last.acc;
    const curve = await weightCurve(lambda, device);
    return {
      method,
      seed,
      testAcc,
      accByEpoch,
      finalCorrect: last.correct,
      meanHypergradNorm: norms.length ? norms.reduce((a, b) => a + b, 0) / norms.length : NaN,
      curve,
      seconds: (performance.now() - t0) / 1000,
    };
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
  return {
    testAcc: { baseline: b.mean, t1t2: t.mean, evograd: e.mean },
    testAccStd: { baseline: b.std, t1t2: t.std, evograd: e.std },
    runs,
    config: cfg,
  };
}

const LABEL: Record<E3Method, string> = { baseline: 'baseline', 't1-t2': 'T1–T2', 'evograd-k2': 'EvoGrad' };

export const mwnLabelNoiseSection = seeded({
  id: 'mwn-label-noise',
  title: 'E3: Meta-Weight-Net under 40% label noise — baseline vs T1–T2 vs EvoGrad',
  paperFigure: 'EvoGrad, Table 5 (Fashion-MNIST MLP instead of CIFAR ResNet-32)',
  defaultSeeds: (quick) => [...(quick ? E3_QUICK : E3_FULL).seeds],
  async runSeed(ctx, seed): Promise<{ runs: E3Run[] }> {
    const cfg = ctx.quick ? E3_QUICK : E3_FULL;
    const progress = ctx.progress(Math.floor(cfg.train / cfg.batch) * cfg.epochs * E3_METHODS.length, `seed ${seed} online steps`);
    try {
      const data = loadE3Data(cfg, seed);
      const runs: E3Run[] = [];
      for (const method of E3_METHODS) runs.push(await runE3Method(method, data, cfg, seed, ctx.device, () => progress.increment(1)));
      return { runs };
    } finally {
      progress.stop();
    }
  },
  summarise(perSeed, ctx): SectionResult {
    const cfg = ctx.quick ? E3_QUICK : E3_FULL;
    const seeds = perSeed.map((s) => s.seed);
    const runs = perSeed.flatMap((s) => (s.json as { runs: E3Run[] }).runs);
    const of = (m: E3Method, f: (r: E3Run) => number) => perSeed.map((s) => f((s.json as { runs: E3Run[] }).runs.find((r) => r.method === m)!));
    const final = Object.fromEntries(E3_METHODS.map((m) => [m, of(m, (r) => r.testAcc * 100)]));
    const best = Object.fromEntries(E3_METHODS.map((m) => [m, of(m, (r) => Math.max(...(r.accByEpoch?.length ? r.accByEpoch : [r.testAcc])) * 100)]));
    // Final accuracy per seed × shared test image where every run kept its per-image results (older seed files did not).
    const byImage = perSeed.every((s) => (s.json as { runs: E3Run[] }).runs.every((r) => r.finalCorrect?.length))
      ? Object.fromEntries(
          E3_METHODS.map((m) => [m, perSeed.map((s) => (s.json as { runs: E3Run[] }).runs.find((r) => r.method === m)!.finalCorrect!.map((x) => x * 100))]),
        )
      : null;
    const finalPaired = byImage ?? final;
    const finalIv = Object.fromEntries(E3_METHODS.map((m) => [m, meanInterval(finalPaired[m])]));
    const bestIv = Object.fromEntries(E3_METHODS.map((m) => [m, meanInterval(best[m])]));
    const pairs: PairDiff[] = [
      ...allPairs(Object.fromEntries(E3_METHODS.map((m) => [`${m} final`, finalPaired[m]]))),
      ...allPairs(Object.fromEntries(E3_METHODS.map((m) => [`${m} best`, best[m]]))),
    ];
    const gain = findPair(pairs, 't1-t2 final', 'baseline final');
    const gap = findPair(pairs, 'evograd-k2 final', 't1-t2 final');
    const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
    const sd = (xs: number[]) => Math.sqrt(xs.reduce((x, y) => x + (y - mean(xs)) ** 2, 0) / xs.length);
    const norms = (m: E3Method) => runs.filter((r) => r.method === m).map((r) => r.meanHypergradNorm ?? NaN);
    const f = (iv: { mean: number; ci95: [number, number] }) => formatInterval(iv.mean, iv.ci95, 4);
    const bars: Row[] = runs.map((r) => ({ method: r.method, seed: `seed ${r.seed}`, acc: r.testAcc * 100 }));
    // The baseline never trains its weight net: its curve is the initial one, kept as the reference.
    const curves: Row[] = runs.flatMap((r) => r.curve.map((p) => ({ ...p, method: r.method === 'baseline' ? 'initial' : r.method, seed: r.seed })));
    const summary: SummaryRow[] = [
      ...E3_METHODS.map((m) => ({
        metric: `test accuracy %, ${LABEL[m]}: final; best epoch`,
        value: `${f(finalIv[m])}; ${f(bestIv[m])}`,
        paper: `${{ baseline: '70.8', 't1-t2': '87.5', 'evograd-k2': '87.7' }[m]} (CIFAR-10, 40 %)`,
        goal: '–',
        mark: null,
      })),
      {
        metric: 'T1–T2 − baseline, final accuracy (points, paired)',
        value: formatInterval(gain.meanDiff, gain.ci95),
        paper: '+16.7 (CIFAR-10)',
        goal: '≥ 2',
        mark: markGoal(gain, '>=', 2),
      },
      {
        metric: 'EvoGrad − T1–T2, final accuracy (points, paired)',
        value: formatInterval(gap.meanDiff, gap.ci95),
        paper: '+0.2 (CIFAR-10)',
        goal: 'within ±1',
        mark: markBand(gap, -1, 1),
      },
      {
        metric: 'mean ‖hypergradient‖ EvoGrad / T1–T2',
        value: mean(norms('evograd-k2')) / mean(norms('t1-t2')),
        paper: '–',
        // Descriptive only. The old note σ²/(2τα) ~ 1e-4 held for mean(v·ℓ); with v/Σv the ratio is O(1) (0.53 in the
        // full run), and λ's Adam is scale-free either way.
        goal: '– (descriptive)',
        mark: null,
      },
    ];
    const means = (iv: Record<string, { mean: number }>) => ({
      baseline: iv.baseline.mean,
      t1t2: iv['t1-t2'].mean,
      evograd: iv['evograd-k2'].mean,
    });
    return {
      summary,
      figures: [
        {
          name: 'accuracy',
          spec: groupedBars({
            title: 'Test accuracy under 40% uniform label noise (%)',
            data: bars,
            category: { field: 'method', title: 'method' },
            group: { field: 'seed', title: 'seed' },
            color: { field: 'method', title: 'method' },
            value: { field: 'acc', title: 'test accuracy (%)' },
            width: 320,
          }),
        },
        {
          name: 'weighting-function',
          spec: lineChart({
            title: 'Learned weighting function v(ℓ) (initial: the untrained net)',
            data: curves,
            x: { field: 'loss', title: 'training loss ℓ' },
            y: { field: 'weight', title: 'weight v(ℓ)' },
            series: { field: 'method', title: 'method' },
            detail: { field: 'seed', title: 'seed' },
            points: false,
          }),
        },
      ],
      json: {
        testAcc: means(finalIv),
        testAccStd: { baseline: sd(final.baseline), t1t2: sd(final['t1-t2']), evograd: sd(final['evograd-k2']) },
        finalAcc: means(finalIv),
        bestAcc: means(bestIv),
        intervals: {
          final: Object.fromEntries(E3_METHODS.map((m) => [m, intervalJson(finalIv[m])])),
          best: Object.fromEntries(E3_METHODS.map((m) => [m, intervalJson(bestIv[m])])),
        },
        pairs,
        seeds,
        pairedOver: byImage ? 'final: seeds × shared test images; best: seeds' : 'seeds',
        runs: runs.map(({ curve: _c, finalCorrect: _f, ...r }) => r),
        curves: runs.map((r) => ({ method: r.method, seed: r.seed, curve: r.curve })),
        config: cfg,
      },
    };
  },
});
