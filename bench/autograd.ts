/**
 * @file Autograd bench: time of a Hessian-vector product relative to one gradient (MLP, LeNet-like CNN), and peak
 * memory of a T1–T2 (Meta-Weight-Net look-ahead) step relative to a plain training step. Timings are a warm-up then
 * the median of several runs, each synced by a readback; peaks use device.resetPeak() per measurement.
 */
import * as raw from '@metagrad/tensor/raw';
import type { Device, Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { median } from '@metagrad/experiments';

export interface AutogradRow {
  model: string;
  gradMs: number;
  hvpMs: number;
  /** Median over rounds of hvp/grad, each round timing both back to back. */
  hvpOverGrad: number;
  plainPeakBytes: number;
  t1t2PeakBytes: number;
  /** t1t2PeakBytes / plainPeakBytes. */
  t1t2OverPlain: number;
  /** Bytes already live before either step (parameters, MWN parameters, batches, HVP vectors): part of both peaks. */
  baselineBytes: number;
  /** Kernel dispatches of one gradient and of one HVP (what the ratio is made of on dispatch-bound adapters). */
  gradDispatches: number;
  hvpDispatches: number;
}

export interface AutogradBench {
  adapter: Device['adapter'];
  rows: AutogradRow[];
}

/** A classifier over flat parameters, with its batches (the bench's own copy: it must not depend on packages/models). */
interface Workload {
  name: string;
  params: Tensor[];
  logits(params: readonly Tensor[], x: Tensor): Tensor;
  x: Tensor;
  labels: Tensor;
  xVal: Tensor;
  labelsVal: Tensor;
}

const LOOKAHEAD_LR = 0.1;
const MWN_HIDDEN = 100;

/** He-style normal initialisation, seeded. */
function init(shape: number[], fanIn: number, seed: number, device: Device): Tensor {
  return raw.normal(shape, seed, { std: Math.sqrt(2 / fanIn), device });
}

function linear(x: Tensor, w: Tensor, b: Tensor): Tensor {
  return ag.add(ag.matmul(x, w), b);
}

function mlpWorkload(device: Device, batch: number): Workload {
  const sizes = [784, 256, 10];
  const params: Tensor[] = [];
  sizes.slice(1).forEach((out, i) => {
    params.push(init([sizes[i], out], sizes[i], 10 + i, device), raw.zeros([out], 'f32', device));
  });
  return {
    name: `mlp 784-256-10, tanh, batch ${batch}`,
    params,
    logits: ([w1, b1, w2, b2], x) => linear(ag.tanh(linear(x, w1, b1)), w2, b2),
    x: raw.normal([batch, 784], 1, { device }),
    labels: raw.randint([batch], 2, 0, 10, { device }),
    xVal: raw.normal([batch, 784], 3, { device }),
    labelsVal: raw.randint([batch], 4, 0, 10, { device }),
  };
}

/** LeNet-5-like: conv5(1→6) relu pool2, conv5(6→16) relu pool2, 256→120→84→10 with relu. */
function cnnWorkload(device: Device, batch: number): Workload {
  const params = [
    init([6, 1, 5, 5], 25, 20, device),
    raw.zeros([1, 6, 1, 1], 'f32', device),
    init([16, 6, 5, 5], 150, 21, device),
    raw.zeros([1, 16, 1, 1], 'f32', device),
    init([256, 120], 256, 22, device),
    raw.zeros([120], 'f32', device),
    init([120, 84], 120, 23, device),
    raw.zeros([84], 'f32', device),
    init([84, 10], 84, 24, device),
    raw.zeros([10], 'f32', device),
  ];
  const pool = { kernel: 2, stride: 2 };
  return {
    name: `lenet 28x28, relu + max-pool, batch ${batch}`,
    params,
    logits: ([c1, cb1, c2, cb2, w3, b3, w4, b4, w5, b5], x) => {
      const h1 = ag.maxPool2d(ag.relu(ag.add(ag.conv2d(x, c1), cb1)), pool);
      const h2 = ag.maxPool2d(ag.relu(ag.add(ag.conv2d(h1, c2), cb2)), pool);
      const flat = ag.reshape(h2, [x.shape[0], 256]);
      return linear(ag.relu(linear(ag.relu(linear(flat, w3, b3)), w4, b4)), w5, b5);
    },
    x: raw.normal([batch, 1, 28, 28], 5, { device }),
    labels: raw.randint([batch], 6, 0, 10, { device }),
    xVal: raw.normal([batch, 1, 28, 28], 7, { device }),
    labelsVal: raw.randint([batch], 8, 0, 10, { device }),
  };
}

function disposeWorkload(w: Workload): void {
  raw.dispose([w.params, w.x, w.labels, w.xVal, w.labelsVal]);
}

/** Meta-Weight-Net parameters: loss [N,1] → hidden (relu) → weight in (0,1) (sigmoid). */
function mwnParams(device: Device): Tensor[] {
  return [
    init([1, MWN_HIDDEN], 1, 30, device),
    raw.zeros([MWN_HIDDEN], 'f32', device),
    init([MWN_HIDDEN, 1], MWN_HIDDEN, 31, device),
    raw.zeros([1], 'f32', device),
  ];
}

function mwnWeights([w1, b1, w2, b2]: readonly Tensor[], losses: Tensor): Tensor {
  return ag.sigmoid(linear(ag.relu(linear(losses, w1, b1)), w2, b2));
}

/** One synced run of `step`: ms until its smallest output has been read back. */
async function timeOnce(step: () => Tensor[]): Promise<number> {
  const t0 = performance.now();
  const out = step();
  const smallest = out.reduce((a, b) => (b.size < a.size ? b : a));
  await smallest.toArray();
  const ms = performance.now() - t0;
  raw.dispose(out);
  return ms;
}

/**
 * Each step's runs after one warm-up round. The steps take turns within every round, so that load from other
 * processes (timings on a shared machine are noisy) hits them alike; ratios are taken within a round.
 */
async function timeSideBySide(reps: number, steps: (() => Tensor[])[]): Promise<number[][]> {
  const times = steps.map((): number[] => []);
  for (let r = 0; r <= reps; r++) {
    for (let k = 0; k < steps.length; k++) {
      const ms = await timeOnce(steps[k]);
      if (r > 0) times[k].push(ms);
    }
  }
  return times;
}

/** Median over rounds of a/b: steadier than the ratio of medians when the load changes between rounds. */
const medianRatio = (a: number[], b: number[]): number => median(a.map((x, i) => x / b[i]));

/** Dispatches recorded by one call of `step` (its outputs are freed afterwards). */
async function countDispatches(device: Device, step: () => Tensor[]): Promise<number> {
  await device.sync();
  const before = device.counters.dispatches;
  const out = step();
  const n = device.counters.dispatches - before;
  raw.dispose(out);
  await device.sync();
  return n;
}

/** Peak bytes in use during `step` (including what was already live: parameters, data), after a fresh window. */
async function peakOf(device: Device, step: () => Tensor[]): Promise<number> {
  await device.sync();
  device.resetPeak();
  const out = step();
  await device.sync();
  const peak = device.memory().peakBytesInUse;
  raw.dispose(out);
  return peak;
}

function lossOf(w: Workload, params: readonly Tensor[], x = w.x, labels = w.labels): Tensor {
  return raw.tidy(() => ag.crossEntropy(w.logits(params, x), labels));
}

/** A plain SGD step: loss, gradient, new parameters (the old ones stay with the caller). */
function plainStep(w: Workload, params: Tensor[]): Tensor[] {
  return raw.tidy(() => {
    const g = ag.grad(lossOf(w, params), params);
    return ag.noGrad(() => params.map((p, i) => raw.sub(p, raw.mulScalar(g[i], LOOKAHEAD_LR))));
  });
}

/**
 * One T1–T2 step of a Meta-Weight-Net: weighted training loss, a differentiable look-ahead θ' = θ − α∇θ, the
 * validation loss at θ', its gradient with respect to the MWN parameters λ, and the λ update.
 */
function t1t2Step(w: Workload, params: Tensor[], lambda: Tensor[]): Tensor[] {
  return raw.tidy(() => {
    const perSample = ag.crossEntropy(w.logits(params, w.x), w.labels, 'none');
    const n = perSample.shape[0];
    // The MWN sees the loss values as data (as in the paper's code): λ's gradient flows through the weights only.
    const weights = mwnWeights(lambda, raw.reshape(ag.detach(perSample), [n, 1]));
    const weighted = ag.mulScalar(ag.sum(ag.mul(ag.reshape(weights, [n]), perSample)), 1 / n);
    const g = ag.grad(weighted, params, { createGraph: true });
    const ahead = params.map((p, i) => ag.sub(p, ag.mulScalar(g[i], LOOKAHEAD_LR)));
    const hyper = ag.grad(lossOf(w, ahead, w.xVal, w.labelsVal), lambda);
    return ag.noGrad(() => lambda.map((l, i) => raw.sub(l, raw.mulScalar(hyper[i], LOOKAHEAD_LR))));
  });
}

async function benchWorkload(device: Device, w: Workload, reps: number): Promise<AutogradRow[]> {
  const params = w.params.map((p) => ag.requiresGrad(p));
  const lambda = mwnParams(device).map((p) => ag.requiresGrad(p));
  const vector = params.map((p, i) => raw.normal(p.shape, 100 + i, { device }));
  const f = (...ps: Tensor[]): Tensor => lossOf(w, ps);
  const gradStep = (): Tensor[] => raw.tidy(() => ag.grad(lossOf(w, params), params));
  const hvpStep = (): Tensor[] => ag.hvp(f, params, vector);

  // Peaks first, while only parameters, batches and vectors are live.
  await device.sync();
  const baselineBytes = device.memory().bytesInUse;
  const plainPeakBytes = await peakOf(device, () => plainStep(w, params));
  const t1t2PeakBytes = await peakOf(device, () => t1t2Step(w, params, lambda));
  // The reusable operator (CG/Neumann loops): gradient graph built once, each product is one more backward.
  const op = new ag.HvpOperator(f, params);
  try {
    const applyStep = (): Tensor[] => op.apply(vector);
    const [gradRuns, hvpRuns, applyRuns] = await timeSideBySide(reps, [gradStep, hvpStep, applyStep]);
    const gradMs = median(gradRuns);
    const gradDispatches = await countDispatches(device, gradStep);
    const hvpDispatches = await countDispatches(device, hvpStep);
    const applyDispatches = await countDispatches(device, applyStep);
    // Fields in the order the JSON promises, then the extras.
    const row = (model: string, runs: number[], dispatches: number): AutogradRow => ({
      model,
      gradMs,
      hvpMs: median(runs),
      hvpOverGrad: medianRatio(runs, gradRuns),
      plainPeakBytes,
      t1t2PeakBytes,
      t1t2OverPlain: t1t2PeakBytes / plainPeakBytes,
      baselineBytes,
      gradDispatches,
      hvpDispatches: dispatches,
    });
    return [row(w.name, hvpRuns, hvpDispatches), row(`${w.name} (HvpOperator.apply)`, applyRuns, applyDispatches)];
  } finally {
    op.dispose();
    raw.dispose([lambda, vector]);
  }
}

export async function benchAutograd(device: Device, opts: { quick: boolean }): Promise<AutogradBench> {
  const reps = opts.quick ? 3 : 15;
  const rows: AutogradRow[] = [];
  for (const make of [() => mlpWorkload(device, 128), () => cnnWorkload(device, 32)]) {
    const w = make();
    try {
      rows.push(...(await benchWorkload(device, w, reps)));
    } finally {
      disposeWorkload(w);
    }
  }
  return { adapter: device.adapter, rows };
}

const mib = (b: number): string => (b / 2 ** 20).toFixed(2);

export function formatAutogradTable(r: AutogradBench): string {
  const lines = [
    '| model | grad ms | HVP ms | HVP/grad | dispatches grad/HVP | plain peak MiB | T1–T2 peak MiB | T1–T2/plain | same, above baseline |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const row of r.rows) {
    lines.push(
      `| ${row.model} | ${row.gradMs.toFixed(1)} | ${row.hvpMs.toFixed(1)} | ${row.hvpOverGrad.toFixed(2)}× | ` +
        `${row.gradDispatches}/${row.hvpDispatches} | ${mib(row.plainPeakBytes)} | ${mib(row.t1t2PeakBytes)} | ${row.t1t2OverPlain.toFixed(2)}× | ` +
        `${((row.t1t2PeakBytes - row.baselineBytes) / (row.plainPeakBytes - row.baselineBytes)).toFixed(2)}× |`,
    );
  }
  const base = r.rows
    .map((row) => `${mib(row.baselineBytes)} MiB`)
    .filter((b, i, all) => all.indexOf(b) === i)
    .join(', ');
  lines.push(
    '',
    `Goal: HVP/grad ≤ 3×. Peaks include what was live before the step (parameters, batches: ${base});`,
    'T1–T2 = MWN look-ahead step with createGraph + validation-loss gradient in the MWN parameters + their update.',
  );
  return lines.join('\n');
}
