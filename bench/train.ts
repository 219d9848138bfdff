/**
 * @file Training-step bench: one SGD step (forward, backward, update) of MLP 784-256-10 and LeNet-5 at batch 128,
 * metagrad against TensorFlow.js 4.22 (webgpu on the same Dawn adapter in the same process, and wasm as a CPU
 * reference). Each timing is a warm-up then the median of several steps, synced by a 4-byte readback of a parameter.
 * Also reports metagrad's dispatches per step (by kernel family) and a forward / backward / update split.
 */
import { createRequire } from 'node:module';
import { autotune, tensor, tidy, dispose, type Device } from '@metagrad/tensor';
import { createNodeDevice } from '@metagrad/tensor/node';
import { crossEntropy, grad, requiresGrad } from '@metagrad/autograd';
import { SGD, fromLeaves, leaves, lenet5, mlp, disposeTree, type Model, type ParamTree } from '@metagrad/models';
import { randomData, tfjsSync, trySetupTfjs, timeIt, type Tf, type TfTensor } from './kernels';
import { median } from '@metagrad/experiments';

export interface TrainRow {
  model: string;
  batch: number;
  /** metagrad ms per training step. */
  ms: number;
  tfjsWebgpuMs: number | null;
  tfjsWasmMs: number | null;
  /** tfjs-webgpu ms / metagrad ms: above 1 means metagrad is faster (the goal is ≥ 2). */
  ratio: number | null;
  /** metagrad's split of a step: forward (to the loss), backward (grad), SGD update; each synced alone. */
  forwardMs: number;
  backwardMs: number;
  updateMs: number;
  dispatchesPerStep: number;
  submitsPerStep: number;
  /**
   * Per kernel family (the key up to its second ':'): dispatches per step and their summed ms, each dispatch
   * replayed alone and synced (so per-dispatch overhead is included), costliest first.
   */
  kernels: Record<string, { count: number; ms: number }>;
}

export interface TrainBench {
  adapter: Device['adapter'];
  tfjsError?: string;
  rows: TrainRow[];
}

const BATCH = 128;
const LR = 0.01;

interface Case {
  name: string;
  inputShape: number[];
  model: Model<ParamTree>;
  /**
   * The same network in tfjs, on input and weights in tfjs's own layouts (tfjsInputShape, tfjsParamShape), so that
   * neither library pays for layout transposes (or their gradients) inside the step.
   */
  tfjs(tf: Tf, x: TfTensor, w: TfTensor[]): TfTensor;
  /** tfjs's input shape (default inputShape). */
  tfjsInputShape?: number[];
  /** tfjs's shape for a parameter of metagrad shape `shape` (default the same). */
  tfjsParamShape?(shape: number[]): number[];
}

const CASES: Case[] = [
  {
    name: 'MLP 784-256-10',
    inputShape: [BATCH, 784],
    model: mlp({ sizes: [784, 256, 10], activation: 'relu' }) as unknown as Model<ParamTree>,
    tfjs: (tf, x, [w1, b1, w2, b2]) => tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, w1, false, true), b1)), w2, false, true), b2),
  },
  {
    name: 'LeNet-5',
    inputShape: [BATCH, 1, 28, 28],
    model: lenet5() as unknown as Model<ParamTree>,
    // tfjs convolves NHWC with [kH, kW, C, O] filters; metagrad NCHW with [O, C, kH, kW]. Each gets its native layout.
    tfjsInputShape: [BATCH, 28, 28, 1],
    tfjsParamShape: (s) => (s.length === 4 ? [s[2], s[3], s[1], s[0]] : s),
    tfjs: (tf, x, [c1, cb1, c2, cb2, f1, fb1, f2, fb2, f3, fb3]) => {
      type T4 = import('@tensorflow/tfjs-core').Tensor4D;
      let h = tf.maxPool(tf.relu(tf.add(tf.conv2d(x as T4, c1 as T4, 1, 'same'), cb1)) as T4, 2, 2, 'valid');
      h = tf.maxPool(tf.relu(tf.add(tf.conv2d(h, c2 as T4, 1, 'valid'), cb2)) as T4, 2, 2, 'valid');
      // Flattened in NHWC order: fc1's 400 inputs are a permutation of metagrad's (random weights either way).
      let f: TfTensor = tf.reshape(h, [BATCH, -1]);
      f = tf.relu(tf.add(tf.matMul(f, f1, false, true), fb1));
      f = tf.relu(tf.add(tf.matMul(f, f2, false, true), fb2));
      return tf.add(tf.matMul(f, f3, false, true), fb3);
    },
  },
];

function labelsData(seed: number): Int32Array {
  const r = randomData(BATCH, seed);
  return Int32Array.from(r, (v) => Math.min(9, Math.floor((v + 1) * 5)));
}

/** Kernel family of a spec key: `binary:add:f32:…` → `binary:add`. */
const family = (key: string) => key.split(':').slice(0, 2).join(':');

/** A prepared training step: `run` records one step, `sync` waits for it, `dispose` frees everything. */
interface Runner {
  run(): void;
  sync(): Promise<void>;
  dispose(): void;
}

/** Times one step of each runner alternately (a load burst on this shared machine hits both alike); medians. */
async function interleaved(reps: number, runners: Runner[]): Promise<number[]> {
  const times = runners.map(() => [] as number[]);
  for (let r = 0; r < reps + 2; r++) {
    for (const [i, x] of runners.entries()) {
      const t0 = performance.now();
      x.run();
      await x.sync();
      if (r >= 2) times[i].push(performance.now() - t0); // two warm-up steps (pipelines compile lazily)
    }
  }
  return times.map(median);
}

interface MetagradRunner extends Runner {
  profile(reps: number): Promise<Pick<TrainRow, 'forwardMs' | 'backwardMs' | 'updateMs' | 'dispatchesPerStep' | 'submitsPerStep' | 'kernels'>>;
}

function metagradRunner(device: Device, c: Case): MetagradRunner {
  const params = c.model.init(1, device);
  for (const p of leaves(params)) requiresGrad(p);
  const n = c.inputShape.reduce((a, b) => a * b, 1);
  const x = tensor(randomData(n, 3), c.inputShape, 'f32', device);
  const labels = tensor(labelsData(4), [BATCH], 'i32', device);
  const opt = new SGD(params, { lr: LR });
  const probe = leaves(params)[0];
  const sync = async () => void (await device.read(probe.buffer, 4));

  const forward = () => tidy(() => crossEntropy(c.model.apply(params, x), labels));
  const gradients = () => {
    const loss = forward();
    const g = grad(loss, leaves(params));
    loss.dispose();
    return g;
  };
  const step = () => {
    const g = gradients();
    opt.step(fromLeaves(params, g));
    dispose(g);
  };

  return {
    run: step,
    sync,
    dispose() {
      opt.dispose();
      disposeTree(params);
      dispose([x, labels]);
    },
    async profile(reps) {
      // Record one step's dispatches, then replay each alone (REPLAY times, synced) to see which kernels cost
      // the time. Replays write into buffers the step has released (garbage, never read) and into the parameters
      // (the SGD kernel: harmless for timing); everything live was allocated before the step, so nothing else aliases.
      const before = { ...device.counters };
      const rec = device.beginRecording();
      try {
        step();
      } finally {
        device.endRecording();
      }
      await sync();
      const recorded = rec.commands.flatMap((c) => (c.k === 'dispatch' ? [{ spec: c.spec, buffers: c.buffers, uniform: c.uniform, wg: c.workgroups }] : []));
      const dispatchesPerStep = device.counters.dispatches - before.dispatches;
      const submitsPerStep = device.counters.submits - before.submits;
      const kernels: Record<string, number> = {};
      const kernelMs: Record<string, number> = {};
      const REPLAY = 4;
      for (const d of recorded) {
        const f = family(d.spec.key);
        kernels[f] = (kernels[f] ?? 0) + 1;
        await device.sync();
        const t0 = performance.now();
        for (let i = 0; i < REPLAY; i++) device.dispatch(d.spec, d.buffers, d.uniform, d.wg);
        await device.sync();
        kernelMs[f] = (kernelMs[f] ?? 0) + (performance.now() - t0) / REPLAY;
      }
      // Split: forward alone, forward + backward, and the update alone (on fixed gradients).
      const forwardMs = await timeIt(
        reps,
        forward,
        async (l) => void (await device.read(l.buffer, 4)),
        (l) => l.dispose(),
      );
      const fwdBwdMs = await timeIt(
        reps,
        gradients,
        async (g) => void (await device.read(g[0].buffer, 4)),
        (g) => dispose(g),
      );
      const fixed = gradients();
      const updateMs = await timeIt(
        reps,
        () => opt.step(fromLeaves(params, fixed)),
        sync,
        () => {},
      );
      dispose(fixed);
      const sorted = Object.fromEntries(
        Object.entries(kernelMs)
          .sort((a, b) => b[1] - a[1])
          .map(([k, ms]) => [k, { count: kernels[k], ms }]),
      );
      return {
        forwardMs,
        backwardMs: Math.max(0, fwdBwdMs - forwardMs),
        updateMs,
        dispatchesPerStep,
        submitsPerStep,
        kernels: sorted,
      };
    },
  };
}

/** A tfjs training step (tf.train.sgd minimize) on `backend`; null when the backend cannot run it. */
async function tfjsRunner(tf: Tf, backend: string, c: Case, shapes: number[][]): Promise<Runner | null> {
  // tfjs-core alone registers no gradients (the @tensorflow/tfjs bundle does). Its ESM build cannot be imported
  // piecewise under Node, so load the CommonJS registration: the gradient registry is a process-wide global.
  createRequire(import.meta.url)('@tensorflow/tfjs-core/dist/register_all_gradients.js');
  if (!(await tf.setBackend(backend))) return null;
  await tf.ready();
  const n = c.inputShape.reduce((a, b) => a * b, 1);
  const x = tf.tensor(randomData(n, 3), c.tfjsInputShape ?? c.inputShape);
  const onehot = tf.oneHot(tf.tensor1d(labelsData(4), 'int32'), 10);
  const vars = shapes.map((s, i) => tf.variable(tf.randomUniform(c.tfjsParamShape?.(s) ?? s, -0.05, 0.05, 'float32', 10 + i)));
  const opt = tf.train.sgd(LR);
  const loss = () => tf.losses.softmaxCrossEntropy(onehot, c.tfjs(tf, x, vars)) as import('@tensorflow/tfjs-core').Scalar;
  const runner: Runner = {
    run: () => opt.minimize(loss, false, vars),
    // Like metagrad's sync: 4 bytes of the first parameter, no kernel.
    sync: () => tfjsSync(tf, vars[0]),
    dispose() {
      opt.dispose();
      tf.dispose([x, onehot, ...vars]);
    },
  };
  try {
    runner.run(); // fails here when the backend lacks a kernel (wasm has no Conv2DBackpropFilter)
    await runner.sync();
    return runner;
  } catch (e) {
    if (process.env.METAGRAD_BENCH_DEBUG) console.error(`tfjs ${backend} ${c.name}:`, e);
    runner.dispose();
    return null;
  }
}

export async function benchTrain(opts: { quick: boolean; device?: Device }): Promise<TrainBench> {
  const device = opts.device ?? (await createNodeDevice({ setDefault: false }));
  const reps = opts.quick ? 3 : 9;
  const rows: TrainRow[] = [];
  const { tf, wasm, tfjsError } = await trySetupTfjs(device);
  try {
    await autotune(device);
    for (const c of CASES) {
      const shapes = (() => {
        const p = c.model.init(1, device);
        const s = leaves(p).map((t) => [...t.shape]);
        disposeTree(p);
        return s;
      })();
      const mg = metagradRunner(device, c);
      try {
        const tfWebgpu = tf ? await tfjsRunner(tf, 'webgpu', c, shapes).catch(() => null) : null;
        const [ms, webgpu] = await interleaved(reps, tfWebgpu ? [mg, tfWebgpu] : [mg]);
        tfWebgpu?.dispose();
        const tfWasm = tf && wasm ? await tfjsRunner(tf, 'wasm', c, shapes).catch(() => null) : null;
        const wasmMs = tfWasm ? (await interleaved(Math.min(reps, 3), [tfWasm]))[0] : null;
        tfWasm?.dispose();
        const profile = await mg.profile(reps);
        const tfjsWebgpuMs = tfWebgpu ? webgpu : null;
        rows.push({
          model: c.name,
          batch: BATCH,
          ms,
          tfjsWebgpuMs,
          tfjsWasmMs: wasmMs,
          ratio: tfjsWebgpuMs === null ? null : tfjsWebgpuMs / ms,
          ...profile,
        });
      } finally {
        mg.dispose();
      }
    }
  } finally {
    if (!opts.device) device.destroy();
  }
  return { adapter: device.adapter, ...(tfjsError ? { tfjsError } : {}), rows };
}

const num = (v: number | null | undefined, digits = 2) => (v === null || v === undefined ? '—' : v.toFixed(digits));

export function formatTrainTable(r: TrainBench): string {
  const lines = [
    ...(r.tfjsError ? [`tfjs unavailable: ${r.tfjsError}`, ''] : []),
    '| model | batch | metagrad ms | fwd / bwd / update ms | dispatches (submits) | tfjs-webgpu ms | tfjs-wasm ms | ratio (tfjs-webgpu/metagrad) |',
    '|---|---:|---:|---|---:|---:|---:|---:|',
  ];
  for (const row of r.rows) {
    lines.push(
      `| ${row.model} | ${row.batch} | ${num(row.ms)} | ${num(row.forwardMs)} / ${num(row.backwardMs)} / ${num(row.updateMs)} | ${row.dispatchesPerStep} (${row.submitsPerStep}) | ${num(row.tfjsWebgpuMs)} | ${num(row.tfjsWasmMs)} | ${num(row.ratio)} |`,
    );
  }
  lines.push('', 'metagrad kernels per step (family ×dispatches: ms, each replayed alone):');
  for (const row of r.rows)
    lines.push(
      `- ${row.model}: ${Object.entries(row.kernels)
        .map(([k, v]) => `${k} ×${v.count}: ${num(v.ms)}`)
        .join(', ')}`,
    );
  return lines.join('\n');
}
