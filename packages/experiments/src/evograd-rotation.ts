/**
 * @file Experiment E2 `evograd-rotation` (EvoGrad, Table 3, on Fashion-MNIST): training images upright, meta-
 * validation and test images rotated +30°; λ is one angle that a RotationTransformer applies to the training
 * images, learned online (base-first) from the rotated validation loss of a LeNet-5 trained on the transformed
 * images. Baseline (no transformer) vs EvoGrad (K = 2, Rademacher σ = 1e-3, τ = 0.05) vs T1–T2 (double backward
 * through the bilinear sampler). Base Adam 1e-3, batch 128; angle Adam 1e-2 from 0. Images average-pooled to 14×14,
 * pixels in [0, 1]. T1–T2's look-ahead uses α = 0.1 (plain SGD); Adam on the angle makes the scale immaterial.
 */
import { noGrad } from '@metagrad/autograd';
import { tensor, type Device } from '@metagrad/tensor';
import { Adam, batchIterator, disposeTree, downsample2x, rotate } from '@metagrad/models';
import { loadFashionMnist } from '@metagrad/models/node';
import { EvoGrad, OneStepLookahead, OnlineTrainer, type ClassificationBatch, type HypergradEstimator } from '@metagrad/meta';
import { seeded, type SectionResult, type SummaryRow } from './section';
import { allPairs, findPair, formatInterval, intervalJson, markBand, markCheck, markDiff, markGoal, meanInterval } from './intervals';
import { lineChart } from './plots';
import { createRotationProblem } from './problems/rotation';
import { classificationHits, disposeBatch, uploadBatch } from './mwn-label-noise-common';

const SIZE = 14;
const ANGLE = 30;

export interface E2Config {
  train: number;
  val: number;
  test: number;
  epochs: number;
  batch: number;
  seeds: number[];
  baseLr: number;
  angleLr: number;
}
/** The paper's settings (base Adam 1e-3, angle Adam 1e-2), 3 epochs of 20 000 images. */
export const E2_FULL: E2Config = {
  train: 20000,
  val: 2000,
  test: 2000,
  epochs: 3,
  batch: 128,
  seeds: [0, 1, 2],
  baseLr: 1e-3,
  angleLr: 1e-2,
};
/** A smoke test: ~40 steps per method, so both learning rates are raised 3× to get anywhere in that budget. */
export const E2_QUICK: E2Config = {
  train: 2560,
  val: 512,
  test: 1000,
  epochs: 2,
  batch: 128,
  seeds: [0],
  baseLr: 3e-3,
  angleLr: 3e-2,
};

const { net, rotator, problem: rotationProblem } = createRotationProblem({ imageSize: SIZE });
export { rotationProblem };

export interface E2Data {
  train: Float32Array;
  trainLabels: Int32Array;
  val: Float32Array;
  valLabels: Int32Array;
  test: Float32Array;
  testUpright: Float32Array;
  testLabels: Int32Array;
}

/** 14×14 normalised images; validation (from other training images) and test rotated +30° at 14×14. */
export function loadE2Data(cfg: E2Config): E2Data {
  // Pixels stay in [0, 1] (no normalisation) so the background is 0, the value the bilinear sampler fills in
  // outside the source: a rotated image then looks the same whether the host or the transformer rotated it.
  const prep = (images: Float32Array) => downsample2x(images, 28, 28).images;
  const tr = loadFashionMnist({ split: 'train', limit: cfg.train + cfg.val });
  const te = loadFashionMnist({ split: 'test', limit: cfg.test });
  const all = prep(tr.images);
  const per = SIZE * SIZE;
  const rot = (x: Float32Array) => rotate(x, SIZE, SIZE, ANGLE);
  const testUpright = prep(te.images);
  return {
    train: all.slice(0, cfg.train * per),
    trainLabels: tr.labels.slice(0, cfg.train),
    val: rot(all.slice(cfg.train * per)),
    valLabels: tr.labels.slice(cfg.train),
    test: rot(testUpright),
    testUpright,
    testLabels: te.labels,
  };
}

/**
 * The angle convention, checked by re-rendering: the GPU transformer at +30° should reproduce the host `rotate`
 * at +30° (which made the validation and test sets), not at −30°. Returns the mean abs pixel difference to each.
 */
export async function angleConventionCheck(data: E2Data, device: Device): Promise<{ plus: number; minus: number }> {
  const per = SIZE * SIZE;
  const img = data.testUpright.slice(0, per);
  const x = tensor(img, [1, 1, SIZE, SIZE], 'f32', device);
  const params = { angle: tensor(Float32Array.of((ANGLE * Math.PI) / 180), [1], 'f32', device) };
  const y = noGrad(() => rotator.apply(params, x));
  const gpu = await y.toArray();
  disposeTree([x, y, params.angle]);
  const diff = (host: Float32Array) => host.reduce((s, v, i) => s + Math.abs(v - gpu[i]), 0) / per;
  return { plus: diff(rotate(img, SIZE, SIZE, ANGLE)), minus: diff(rotate(img, SIZE, SIZE, -ANGLE)) };
}

export type E2Method = 'baseline' | 'evograd' | 't1-t2';

export interface E2Run {
  method: E2Method;
  seed: number;
  angleDeg: number;
  accRotated: number;
  accUpright: number;
  /** Per rotated test image, 1 where the final model is right: rotated-accuracy pairs resample seeds and the shared images. */
  rotatedCorrect?: number[];
  angleTrace: number[];
  seconds: number;
  meanHypergradNorm: number;
}

export async function runE2Method(method: E2Method, data: E2Data, cfg: E2Config, seed: number, device: Device, onStep?: () => void): Promise<E2Run> {
  const t0 = performance.now();
  const theta = net.init(10 + seed, device);
  const lambda = rotator.init(0, device);
  const thetaOptimizer = new Adam(theta, { lr: cfg.baseLr });
  const lambdaOptimizer = new Adam(lambda, { lr: cfg.angleLr });
  const estimator: HypergradEstimator<ClassificationBatch> | null =
    method === 'baseline'
      ? null
      : method === 'evograd'
        ? new EvoGrad({ K: 2, sigma: 1e-3, tau: 0.05, noise: 'rademacher', seed: 500 + seed })
        : new OneStepLookahead();
  // The baseline trains on the upright images directly (no transformer in its loss).
  const baselineProblem = { ...rotationProblem, trainLoss: rotationProblem.valLoss };
  const trainer = new OnlineTrainer({
    problem: method === 'baseline' ? baselineProblem : rotationProblem,
    estimator,
    theta,
    lambda,
    thetaOptimizer,
    lambdaOptimizer,
    order: 'base-first',
    innerLr: 0.1,
    device,
  });
  const trainIdx = batchIterator({
    n: data.trainLabels.length,
    batchSize: cfg.batch,
    seed: 600 + seed,
    dropLast: true,
    epochs: cfg.epochs,
  });
  const valIdx = batchIterator({
    n: data.valLabels.length,
    batchSize: cfg.batch,
    seed: 700 + seed,
    dropLast: true,
    epochs: Infinity,
  });
  const angleTrace: number[] = [];
  const norms: number[] = [];
  const angle = lambda.angle;
  try {
    for (const rows of trainIdx) {
      const train = uploadBatch(data.train, data.trainLabels, rows, [1, SIZE, SIZE], device);
      const val = uploadBatch(data.val, data.valLabels, valIdx.next().value as Int32Array, [1, SIZE, SIZE], device);
      const log = await trainer.trainStep(train, val);
      if (Number.isFinite(log.hypergradNorm)) norms.push(log.hypergradNorm);
      angleTrace.push(((await angle.toArray())[0] * 180) / Math.PI);
      disposeBatch(train);
      disposeBatch(val);
      onStep?.();
    }
    const rotated = await classificationHits((x) => net.apply(theta, x), data.test, data.testLabels, [1, SIZE, SIZE], device);
    return {
      method,
      seed,
      angleDeg: angleTrace[angleTrace.length - 1],
      angleTrace,
      accRotated: rotated.acc,
      rotatedCorrect: rotated.correct,
      accUpright: (await classificationHits((x) => net.apply(theta, x), data.testUpright, data.testLabels, [1, SIZE, SIZE], device)).acc,
      seconds: (performance.now() - t0) / 1000,
      meanHypergradNorm: norms.length ? norms.reduce((a, b) => a + b, 0) / norms.length : NaN,
    };
  } finally {
    thetaOptimizer.dispose();
    lambdaOptimizer.dispose();
    disposeTree([theta, lambda]);
  }
}

export interface E2Result {
  angleDeg: number;
  accBaselineRotated: number;
  accBaselineUpright: number;
  accEvoGrad: number;
  accT1T2: number;
  angleDegT1T2: number;
  gapClosed: number;
  convention: { plus: number; minus: number };
  runs: E2Run[];
}

export async function runEvogradRotation(device: Device, cfg: E2Config, onStep?: () => void): Promise<E2Result> {
  const data = loadE2Data(cfg);
  const convention = await angleConventionCheck(data, device);
  const runs: E2Run[] = [];
  for (const seed of cfg.seeds) for (const m of ['baseline', 'evograd', 't1-t2'] as const) runs.push(await runE2Method(m, data, cfg, seed, device, onStep));
  const avg = (m: E2Method, f: (r: E2Run) => number) => {
    const xs = runs.filter((r) => r.method === m).map(f);
    return xs.reduce((a, b) => a + b, 0) / xs.length;
  };
  // Report the angle in the host `rotate` convention (the one that made the validation set).
  const sign = convention.plus <= convention.minus ? 1 : -1;
  const accBaselineRotated = avg('baseline', (r) => r.accRotated) * 100;
  const accBaselineUpright = avg('baseline', (r) => r.accUpright) * 100;
  const accEvoGrad = avg('evograd', (r) => r.accRotated) * 100;
  return {
    angleDeg: sign * avg('evograd', (r) => r.angleDeg),
    accBaselineRotated,
    accBaselineUpright,
    accEvoGrad,
    accT1T2: avg('t1-t2', (r) => r.accRotated) * 100,
    angleDegT1T2: sign * avg('t1-t2', (r) => r.angleDeg),
    gapClosed: (accEvoGrad - accBaselineRotated) / (accBaselineUpright - accBaselineRotated),
    convention,
    runs,
  };
}

/** One seed of E2: the three methods on the same data, and the angle-convention check. */
export interface E2SeedJson {
  runs: E2Run[];
  convention: { plus: number; minus: number };
}

export const evogradRotationSection = seeded({
  id: 'evograd-rotation',
  title: 'E2: learning a +30° rotation of the training images with EvoGrad and T1–T2',
  paperFigure: 'EvoGrad, Table 3 (Fashion-MNIST instead of MNIST)',
  defaultSeeds: (quick) => [...(quick ? E2_QUICK : E2_FULL).seeds],
  async runSeed(ctx, seed): Promise<E2SeedJson> {
    const cfg = ctx.quick ? E2_QUICK : E2_FULL;
    const progress = ctx.progress(Math.floor(cfg.train / cfg.batch) * cfg.epochs * 3, `seed ${seed} online steps`);
    try {
      const data = loadE2Data(cfg);
      const convention = await angleConventionCheck(data, ctx.device);
      const runs: E2Run[] = [];
      for (const m of ['baseline', 'evograd', 't1-t2'] as const) runs.push(await runE2Method(m, data, cfg, seed, ctx.device, () => progress.increment(1)));
      return { runs, convention };
    } finally {
      progress.stop();
    }
  },
  summarise(perSeed, ctx): SectionResult {
    const seeds = perSeed.map((s) => s.seed);
    const seedRuns = perSeed.map((s) => s.json as E2SeedJson);
    // The angle in the host `rotate` convention (the one that made the validation set), per seed.
    const sign = (j: E2SeedJson) => (j.convention.plus <= j.convention.minus ? 1 : -1);
    const of = (m: E2Method, f: (r: E2Run) => number) => seedRuns.map((j) => f(j.runs.find((r) => r.method === m)!));
    const angleE = of('evograd', (r) => r.angleDeg).map((a, i) => sign(seedRuns[i]) * a);
    const angleT = of('t1-t2', (r) => r.angleDeg).map((a, i) => sign(seedRuns[i]) * a);
    // Rotated-test accuracy per seed × shared test image where every run kept its per-image results (older seed files did not).
    const byImage = seedRuns.every((j) => j.runs.every((r) => r.rotatedCorrect?.length));
    const rotatedOf = (m: E2Method) =>
      byImage ? seedRuns.map((j) => j.runs.find((r) => r.method === m)!.rotatedCorrect!.map((x) => x * 100)) : of(m, (r) => r.accRotated * 100);
    const accBR = of('baseline', (r) => r.accRotated * 100);
    const accBU = of('baseline', (r) => r.accUpright * 100);
    const accE = of('evograd', (r) => r.accRotated * 100);
    const [pairedB, pairedE, pairedT] = (['baseline', 'evograd', 't1-t2'] as const).map(rotatedOf);
    const gap = accE.map((e, i) => (e - accBR[i]) / (accBU[i] - accBR[i]));
    const iv = {
      angleE: meanInterval(angleE),
      angleT: meanInterval(angleT),
      accBR: meanInterval(pairedB),
      accBU: meanInterval(accBU),
      accE: meanInterval(pairedE),
      accT: meanInterval(pairedT),
      gap: meanInterval(gap),
    };
    const pairs = allPairs({ baseline: pairedB, evograd: pairedE, 't1-t2': pairedT });
    const gain = findPair(pairs, 'evograd', 'baseline');
    const f = (x: { mean: number; ci95: [number, number] }, d = 3) => formatInterval(x.mean, x.ci95, d);
    const conventionOk = seedRuns.every((j) => j.convention.plus < j.convention.minus);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const traces = seedRuns.flatMap((j, i) =>
      j.runs
        .filter((x) => x.method !== 'baseline')
        .flatMap((x) => x.angleTrace.map((a, step) => ({ step, angle: sign(j) * a, method: x.method, seed: seeds[i] }))),
    );
    const summary: SummaryRow[] = [
      {
        metric: 'learned angle, EvoGrad (°)',
        value: f(iv.angleE),
        paper: '28.5 ± 5.2 (true 30)',
        goal: '30 ± 6',
        mark: markBand(iv.angleE, 24, 36),
      },
      { metric: 'learned angle, T1–T2 (°)', value: f(iv.angleT), paper: '– (true 30)', goal: '–', mark: null },
      {
        metric: 'test acc % baseline rotated / upright',
        value: `${f(iv.accBR, 4)} / ${f(iv.accBU, 4)}`,
        paper: '81.8 / 98.4 (MNIST)',
        goal: '–',
        mark: null,
      },
      {
        metric: 'test acc % EvoGrad / T1–T2 (rotated test)',
        value: `${f(iv.accE, 4)} / ${f(iv.accT, 4)}`,
        paper: '98.1 (EvoGrad, MNIST)',
        goal: '–',
        mark: null,
      },
      {
        metric: 'test acc % EvoGrad − baseline (rotated, paired)',
        value: formatInterval(gain.meanDiff, gain.ci95),
        paper: '+16.3 (MNIST)',
        goal: '> 0',
        mark: markDiff(gain, '>'),
      },
      {
        metric: 'share of the rotated–upright gap EvoGrad closes',
        value: f(iv.gap),
        paper: '0.98 (MNIST)',
        goal: '≥ 0.7',
        mark: markGoal(iv.gap, '>=', 0.7),
      },
      {
        metric: 'sign check: |GPU(+30°) − host(+30°)| vs host(−30°)',
        value: `${mean(seedRuns.map((j) => j.convention.plus)).toExponential(1)} vs ${mean(seedRuns.map((j) => j.convention.minus)).toExponential(1)}`,
        paper: '–',
        goal: 'same convention',
        mark: markCheck(conventionOk),
      },
    ];
    const runs = seedRuns.flatMap((j) => j.runs);
    return {
      summary,
      figures: [
        {
          name: 'angle',
          spec: lineChart({
            title: 'Learned rotation angle during training',
            data: traces,
            x: { field: 'step', title: 'online step' },
            y: { field: 'angle', title: 'angle (°)' },
            series: { field: 'method', title: 'method' },
            detail: { field: 'seed', title: 'seed' },
            points: false,
            rule: { y: 30, label: 'true +30°' },
          }),
        },
      ],
      json: {
        angleDeg: iv.angleE.mean,
        accBaselineRotated: iv.accBR.mean,
        accBaselineUpright: iv.accBU.mean,
        accEvoGrad: iv.accE.mean,
        accT1T2: iv.accT.mean,
        angleDegT1T2: iv.angleT.mean,
        gapClosed: iv.gap.mean,
        convention: seedRuns[0].convention,
        runs: runs.map(({ angleTrace: _t, rotatedCorrect: _c, ...x }) => x),
        pairedOver: byImage ? 'rotated accuracy: seeds × shared test images; the rest: seeds' : 'seeds',
        config: ctx.quick ? E2_QUICK : E2_FULL,
        intervals: Object.fromEntries(Object.entries(iv).map(([k, v]) => [k, intervalJson(v)])),
        pairs,
        seeds,
      },
    };
  },
});
