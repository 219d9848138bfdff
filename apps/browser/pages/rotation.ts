/**
 * @file Rotation-learning page (the EvoGrad paper's Fashion-MNIST rotation experiment, scaled down): LeNet-5 on
 * upright training images, validation/test rotated +30°, λ = one angle applied to the training batches by
 * metagrad's RotationTransformer, learned online with EvoGrad (base-first order, Adam on both levels). The problem is
 * E2's (`createRotationProblem` from @metagrad/experiments), at the page's image size.
 */
import { crossEntropy, detach, grad, noGrad, requiresGrad } from '@metagrad/autograd';
import { createRotationProblem } from '@metagrad/experiments';
import { EvoGrad, OneStepLookahead, OnlineTrainer } from '@metagrad/meta';
import { Adam, type LeNet5Params, type RotationParams, Rng, accuracy, downsample2x, fromLeaves, leaves, mapTree, parseIdx, rotate } from '@metagrad/models';
import { type Device, type Tensor, dispose, tensor, tidy } from '@metagrad/tensor';
import { type Chart, type Run, demoStatus, finishRun, fmt, freshChart, paramForm, readParams, runControls, setState, startDevice } from './common';
import type { FashionManifest } from '../fashion-asset';

/**
 * Defaults favour a visible result in a few hundred steps: K = 4 antithetic copies and σ = 1e-2 give a far less
 * noisy estimate than the paper's K = 2, σ = 1e-3 (whose single estimates have a std ~10× their mean), and a short
 * warm-up of base-only steps lets the network learn something before its angle signal means anything.
 * The paper's settings: ?K=2&sigma=0.001&antithetic=0&lrBase=0.001&lrAngle=0.01&warmup=0.
 */
const count = (value: number, min = 1, max = 1_000_000) => ({ value, integer: true, min, max });
const flag = (value: number) => ({ value, integer: true, min: 0, max: 1 });
const rate = (value: number) => ({ value, positive: true, max: 10 });
const SPECS = {
  steps: count(300),
  warmup: count(20, 0),
  batch: count(64, 1, 4096),
  K: count(4, 1, 256),
  antithetic: flag(1),
  sigma: rate(1e-2),
  tau: rate(0.05),
  lrBase: rate(3e-3),
  lrAngle: rate(3e-2),
  evalEvery: count(20),
  /** Image side: 28 halved while larger than this (0 would halve forever; LeNet-5 needs ≥ 12, so 14 or 28). */
  size: count(14, 12, 28),
  nTest: count(500),
  targetDeg: { value: 30, min: -180, max: 180 },
  baseline: flag(1),
  t1t2: flag(0),
  seed: count(3, 0, 2 ** 31 - 1),
};
const params = readParams(SPECS);
const SAMPLES = 8;

interface Batch {
  x: Tensor;
  y: Tensor;
}

interface HostSplit {
  images: Float32Array;
  labels: Int32Array;
  n: number;
}

/** Fetches the build-time asset: rows of [label, 28×28 pixels] as uint8 IDX, split per the manifest. */
async function loadSubset(): Promise<{
  splits: Record<'train' | 'val' | 'test', HostSplit> & { classes: string[] };
  side: number;
}> {
  const manifest = (await (await fetch('fashion-subset.json')).json()) as FashionManifest | { error: string };
  if ('error' in manifest) {
    throw new Error(`the Fashion-MNIST subset was not built (${manifest.error}); install dataset-fashion-mnist and rerun pnpm demo:browser`);
  }
  const bytes = new Uint8Array(await (await fetch(manifest.file)).arrayBuffer());
  const idx = parseIdx(bytes, manifest.file);
  const pixels = manifest.height * manifest.width;
  const split = ([start, end]: [number, number]): HostSplit => {
    const n = end - start;
    let images: Float32Array = new Float32Array(n * pixels);
    const labels = new Int32Array(n);
    for (let r = 0; r < n; r++) {
      const row = (start + r) * (pixels + 1);
      labels[r] = idx.data[row];
      for (let p = 0; p < pixels; p++) images[r * pixels + p] = idx.data[row + 1 + p] / 255;
    }
    let side = manifest.height;
    while (side > params.size) {
      images = downsample2x(images, side, side).images;
      side /= 2;
    }
    return { images, labels, n };
  };
  const splits = {
    train: split(manifest.splits.train),
    val: split(manifest.splits.val),
    test: split(manifest.splits.test),
    classes: manifest.classes,
  };
  let side = manifest.height;
  while (side > params.size) side /= 2;
  return { splits, side };
}

function toBatch(split: HostSplit, rows: ArrayLike<number>, side: number): Batch {
  const pixels = side * side;
  const x = new Float32Array(rows.length * pixels);
  const y = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    x.set(split.images.subarray(rows[i] * pixels, (rows[i] + 1) * pixels), i * pixels);
    y[i] = split.labels[rows[i]];
  }
  return { x: tensor(x, [rows.length, 1, side, side]), y: tensor(y, [rows.length], 'i32') };
}

function randomRows(rng: Rng, n: number, count: number): Int32Array {
  return Int32Array.from({ length: count }, () => rng.int(n));
}

/** Draws greyscale images (values in [0, 1]) into small canvases (pictures, not charts). */
function drawImages(containerId: string, images: Float32Array, side: number, captions: string[], rowLabel: string): void {
  const container = document.getElementById(containerId) as HTMLElement;
  const head = document.createElement('div');
  head.className = 'row-label';
  head.textContent = rowLabel;
  container.replaceChildren(head);
  const pixels = side * side;
  captions.forEach((caption, i) => {
    const figure = document.createElement('figure');
    const canvas = document.createElement('canvas');
    canvas.width = side;
    canvas.height = side;
    const context = canvas.getContext('2d') as CanvasRenderingContext2D;
    const data = context.createImageData(side, side);
    for (let p = 0; p < pixels; p++) {
      const v = Math.max(0, Math.min(255, Math.round(images[i * pixels + p] * 255)));
      data.data.set([v, v, v, 255], p * 4);
    }
    context.putImageData(data, 0, 0);
    const label = document.createElement('figcaption');
    label.textContent = caption;
    figure.append(canvas, label);
    container.append(figure);
  });
}

function lineChart(id: string, yTitle: string, datasets: { label: string; color: string; dash?: number[] }[], yRange?: [number, number]): Chart {
  return freshChart(id, {
    type: 'line',
    data: {
      datasets: datasets.map((d) => ({
        label: d.label,
        data: [],
        borderColor: d.color,
        backgroundColor: d.color,
        borderDash: d.dash,
        borderWidth: 2,
        pointRadius: 0,
      })),
    },
    options: {
      maintainAspectRatio: false,
      parsing: false,
      scales: {
        x: {
          type: 'linear',
          title: { display: true, text: 'step' },
          min: 0,
          max: params.steps,
          ticks: { precision: 0 },
        },
        y: {
          type: 'linear',
          title: { display: true, text: yTitle },
          ...(yRange ? { min: yRange[0], max: yRange[1] } : {}),
        },
      },
    },
  });
}

/** One whole run with the current `params`; `run.tick()` between chunks of steps. */
async function rotationRun(device: Device, run: Run): Promise<void> {
  const t0 = performance.now();
  setState('running', 'loading the Fashion-MNIST subset…');
  const { splits, side } = await loadSubset();
  // Validation and test images are rotated +30° on the host (float64 bilinear, torch's convention).
  const valRotated: HostSplit = { ...splits.val, images: rotate(splits.val.images, side, side, params.targetDeg) };
  const nTest = Math.min(params.nTest, splits.test.n);
  const testRotated: HostSplit = {
    ...splits.test,
    n: nTest,
    images: rotate(splits.test.images.subarray(0, nTest * side * side), side, side, params.targetDeg),
  };
  const testBatch = toBatch(
    testRotated,
    Int32Array.from({ length: nTest }, (_, i) => i),
    side,
  );

  // The problem E2 trains (L_T on training images rotated by λ, L_V on the rotated validation images), with its
  // batched forward: EvoGrad's K copies run as one grouped LeNet.
  const { net, rotator: rotation, problem } = createRotationProblem({ imageSize: side });
  const theta = net.init(params.seed);
  const lambda = rotation.init(params.seed);
  const thetaOptimizer = new Adam(theta, { lr: params.lrBase });
  const lambdaOptimizer = new Adam(lambda, { lr: params.lrAngle });
  const trainer = new OnlineTrainer({
    problem,
    estimator: params.t1t2
      ? new OneStepLookahead()
      : new EvoGrad({
          K: params.K,
          sigma: params.sigma,
          tau: params.tau,
          noise: 'rademacher',
          antithetic: params.antithetic === 1,
          seed: params.seed,
        }),
    theta,
    lambda,
    thetaOptimizer,
    lambdaOptimizer,
    order: 'base-first', // as the paper's rotation experiment: base step, then the angle at the new weights
    innerLr: params.lrBase,
  });
  // Baseline: the same network and optimiser on upright images only (λ fixed at 0), fed the same batches.
  const baseTheta = params.baseline ? net.init(params.seed) : null;
  const baseOptimizer = baseTheta ? new Adam(baseTheta, { lr: params.lrBase }) : null;
  const sampleRows = Int32Array.from({ length: SAMPLES }, (_, i) => i);
  const sampleBatch = toBatch(splits.train, sampleRows, side);
  // Whichever way the run ends (finished, reset, failed), its model, optimiser state and batches are freed.
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    trainer.dispose();
    thetaOptimizer.dispose();
    lambdaOptimizer.dispose();
    baseOptimizer?.dispose();
    dispose([...leaves(theta), ...leaves(lambda), ...(baseTheta ? leaves(baseTheta) : []), testBatch.x, testBatch.y, sampleBatch.x, sampleBatch.y]);
  };
  try {
    /** One plain base step on upright images (the baseline, and the EvoGrad model's optional warm-up). */
    const uprightStep = (weights: LeNet5Params, optimizer: Adam, batch: Batch): void => {
      const live = mapTree(weights, (t) => requiresGrad(detach(t)));
      const loss = tidy(() => crossEntropy(net.apply(live, batch.x), batch.y));
      const grads = grad(loss, leaves(live));
      optimizer.step(fromLeaves(live, grads));
      dispose([loss, ...grads, ...leaves(live)]);
    };

    const angleChart = lineChart('angle-chart', 'λ (degrees)', [
      { label: `learned angle (${params.t1t2 ? 'T1–T2' : 'EvoGrad'})`, color: '#2f6fd6' },
      { label: `target +${params.targetDeg}°`, color: '#888', dash: [6, 4] },
    ]);
    angleChart.data.datasets[1].data = [
      { x: 0, y: params.targetDeg },
      { x: params.steps, y: params.targetDeg },
    ];
    const accuracyChart = lineChart(
      'accuracy-chart',
      'test accuracy',
      [
        { label: `${params.t1t2 ? 'T1–T2' : 'EvoGrad'} (learned rotation)`, color: '#2f6fd6' },
        ...(params.baseline ? [{ label: 'baseline (upright only)', color: '#d6552f' }] : []),
      ],
      [0, 1],
    );

    const captions = Array.from(sampleRows, (r) => splits.classes[splits.train.labels[r]] ?? String(splits.train.labels[r]));
    const targetSamples = rotate(splits.train.images.subarray(0, SAMPLES * side * side), side, side, params.targetDeg);
    drawImages('samples-upright', splits.train.images, side, captions, 'upright (what the baseline trains on)');
    drawImages('samples-target', targetSamples, side, captions, `rotated +${params.targetDeg}° (as the test set)`);

    const readAngle = async (): Promise<number> => ((await lambda.angle.toArray())[0] * 180) / Math.PI;
    const evaluate = async (weights: LeNet5Params): Promise<number> => {
      const logits = noGrad(() => net.apply(weights, testBatch.x));
      try {
        return await accuracy(logits, testBatch.y);
      } finally {
        logits.dispose();
      }
    };
    const renderThrough = async (angle: RotationParams): Promise<Float32Array> => {
      const out = noGrad(() => rotation.apply(angle, sampleBatch.x));
      const pixels = (await out.toArray()) as Float32Array;
      out.dispose();
      return pixels;
    };

    // Sign convention, checked by re-rendering: the GPU transformer at +target must match the host's +target rotation.
    const probe = { angle: tensor([(params.targetDeg * Math.PI) / 180]) };
    const probePixels = await renderThrough(probe);
    probe.angle.dispose();
    let signCheckMaxDiff = 0;
    for (let i = 0; i < probePixels.length; i++) signCheckMaxDiff = Math.max(signCheckMaxDiff, Math.abs(probePixels[i] - targetSamples[i]));

    const rng = new Rng(params.seed + 1);
    const angles: { step: number; deg: number }[] = [{ step: 0, deg: await readAngle() }];
    const evals: { step: number; evograd: number; baseline: number | null }[] = [];
    const metrics = document.getElementById('metrics') as HTMLElement;
    const showMetrics = (): void => {
      const last = evals[evals.length - 1];
      metrics.innerHTML =
        `<span>angle λ = <b>${fmt(angles[angles.length - 1].deg, 2)}°</b> (target +${params.targetDeg}°)</span>` +
        (last
          ? `<span>rotated-test accuracy: EvoGrad <b>${fmt(100 * last.evograd, 1)}%</b>` +
            (last.baseline !== null ? `, baseline <b>${fmt(100 * last.baseline, 1)}%</b>` : '') +
            ` (${nTest} images, step ${last.step})</span>`
          : '') +
        `<span>GPU vs host rotation at +${params.targetDeg}°: max pixel diff ${signCheckMaxDiff.toExponential(1)}</span>` +
        `<span>EvoGrad K=${params.K}${params.antithetic ? ' antithetic' : ''}, σ=${params.sigma}, τ=${params.tau}; first ${params.warmup} steps base-only</span>`;
    };
    const checkpoint = async (step: number): Promise<void> => {
      const evograd = await evaluate(theta);
      const baseline = baseTheta ? await evaluate(baseTheta) : null;
      evals.push({ step, evograd, baseline });
      accuracyChart.data.datasets[0].data.push({ x: step, y: evograd });
      if (baseline !== null) accuracyChart.data.datasets[1].data.push({ x: step, y: baseline });
      accuracyChart.update();
      drawImages('samples-learned', await renderThrough(lambda), side, captions, `through the learned λ = ${fmt(angles[angles.length - 1].deg, 1)}° (GPU)`);
      showMetrics();
    };
    await checkpoint(0);

    let liveAfterFirstStep = 0;
    let lastLog = '';
    for (let step = 1; step <= params.steps; step++) {
      const trainBatch = toBatch(splits.train, randomRows(rng, splits.train.n, params.batch), side);
      const valBatch = toBatch(valRotated, randomRows(rng, valRotated.n, params.batch), side);
      try {
        const warm = step <= params.warmup; // base steps only: the angle's signal is weak while the net is random
        if (warm) uprightStep(theta, thetaOptimizer, trainBatch);
        const log = warm ? null : await trainer.trainStep(trainBatch, valBatch);
        if (baseTheta && baseOptimizer) uprightStep(baseTheta, baseOptimizer, trainBatch);
        if (log) lastLog = `train loss ${fmt(log.trainLoss)}, val loss ${fmt(log.valLoss)}, |dL_V/dλ| ${log.hypergradNorm.toExponential(2)}`;
        else lastLog = `warm-up (base steps only)`;
      } finally {
        dispose([trainBatch.x, trainBatch.y, valBatch.x, valBatch.y]);
      }
      angles.push({ step, deg: await readAngle() });
      angleChart.data.datasets[0].data.push({ x: step, y: angles[angles.length - 1].deg });
      if (step === 1) liveAfterFirstStep = device.memory().liveTensors;
      if (step % params.evalEvery === 0 || step === params.steps) await checkpoint(step);
      if (step % 5 === 0 || step === params.steps) {
        angleChart.update();
        setState('running', `step ${step}/${params.steps}: ${lastLog} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      }
      await run.tick();
    }
    const final = evals[evals.length - 1];
    const angleDeg = angles[angles.length - 1].deg;
    const ms = performance.now() - t0;
    const liveTensorGrowth = device.memory().liveTensors - liveAfterFirstStep;
    release();
    const liveTensorsAtEnd = device.memory().liveTensors;
    finishRun(
      {
        steps: params.steps,
        batch: params.batch,
        K: params.K,
        size: side,
        angleDeg,
        angles,
        targetDeg: params.targetDeg,
        accEvoGrad: final.evograd,
        accBaseline: final.baseline,
        evals,
        signCheckMaxDiff,
        liveTensorGrowth,
        // Everything the run made is freed by now (the page itself holds no tensors).
        liveTensorsAtEnd,
        msPerStep: ms / params.steps,
        ms,
      },
      `done in ${(ms / 1000).toFixed(1)} s (${params.steps} steps, ${fmt(ms / params.steps, 0)} ms/step): angle ${fmt(angleDeg, 2)}°, ` +
        `rotated-test accuracy EvoGrad ${fmt(100 * final.evograd, 1)}%` +
        (final.baseline !== null ? `, baseline ${fmt(100 * final.baseline, 1)}%` : ''),
    );
  } finally {
    release();
  }
}

demoStatus('rotation');
const device: Device | null = await startDevice();
if (device) {
  const controls = runControls((run) => rotationRun(device, run));
  paramForm(
    SPECS,
    params,
    ['steps', 'warmup', 'batch', 'K', 'antithetic', 'sigma', 'tau', 'lrBase', 'lrAngle', 'evalEvery', 'size', 'nTest', 'targetDeg', 'baseline', 't1t2', 'seed'],
    () => void controls.restart(),
  );
}
