/**
 * @file Kernel bench: metagrad matmul/conv/elementwise/reduce against TensorFlow.js 4.22 (webgpu on the same adapter,
 * in the same process, and wasm as a CPU reference). Every timing is a warm-up then the median of the same number of
 * runs for metagrad and tfjs-webgpu, each synced the same way: a 4-byte copy of the output's GPU buffer, no kernel.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as metagrad from '@metagrad/tensor';
import { autotune, chooseMatmulVariant, tensor, variantName, type Device, type MatmulVariant, type Tensor } from '@metagrad/tensor';
import { matmul } from '@metagrad/tensor/raw';
import { createNodeDevice } from '@metagrad/tensor/node';
import { median } from '@metagrad/experiments';

export interface KernelRow {
  op: string;
  shape: string;
  /** Kernel variant metagrad used (matmul). */
  variant?: string;
  ms: number;
  gflops?: number;
  gbps?: number;
  tfjsWebgpuMs: number | null;
  tfjsWasmMs: number | null;
  /** tfjs-webgpu ms / metagrad ms: above 1 means metagrad is faster. */
  ratio: number | null;
}

export interface KernelsBench {
  adapter: Device['adapter'];
  /** Matmul variants picked by autotuning on this adapter. */
  tuning: Record<string, string>;
  tfjsError?: string;
  rows: KernelRow[];
}

/** Runs `step` (which returns the tensor to sync on) once to warm up, then `reps` times; median ms. */
export async function timeIt<T>(reps: number, step: () => T, sync: (out: T) => Promise<void>, release: (out: T) => void): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r <= reps; r++) {
    const t0 = performance.now();
    const out = step();
    await sync(out);
    const ms = performance.now() - t0;
    release(out);
    if (r > 0) times.push(ms);
  }
  return median(times);
}

export function randomData(n: number, seed = 1): Float32Array {
  const d = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    d[i] = s / 2 ** 31 - 1;
  }
  return d;
}

// ---------------------------------------------------------------- tfjs

export type Tf = typeof import('@tensorflow/tfjs-core');
export type TfTensor = import('@tensorflow/tfjs-core').Tensor;

/** dawn.node objects must stay referenced while tfjs uses them (GC'ing create()'s result crashes the process). */
let _tfjsKeepAlive: unknown[] = [];

/**
 * Sets tfjs-webgpu up on the same kind of adapter as the metagrad device: dawn.node's `globals` on globalThis and
 * `navigator.gpu` from `create()`, then a WebGPUBackend built on a device we request ourselves (tfjs's own factory
 * asks for a core adapter, which GLES/llvmpipe cannot give).
 */
export async function setupTfjs(device: Device): Promise<{ tf: Tf; wasm: boolean }> {
  const require = createRequire(import.meta.url);
  const { create, globals } = require('webgpu') as { create(flags: string[]): GPU; globals: Record<string, unknown> };
  Object.assign(globalThis, globals);
  const name = device.adapter.name;
  const flags = name === 'llvmpipe' ? ['backend=opengles'] : name === 'swiftshader' ? ['backend=vulkan'] : [];
  const options = (name === 'llvmpipe' ? { featureLevel: 'compatibility' } : { powerPreference: 'high-performance' }) as GPURequestAdapterOptions;
  const gpu = create(flags);
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  const adapter = await gpu.requestAdapter(options);
  if (!adapter) throw new Error('tfjs: requestAdapter() returned null');
  const limitNames = [
    'maxComputeInvocationsPerWorkgroup',
    'maxComputeWorkgroupSizeX',
    'maxComputeWorkgroupSizeY',
    'maxComputeWorkgroupStorageSize',
    'maxStorageBuffersPerShaderStage',
    'maxStorageBufferBindingSize',
    'maxBufferSize',
  ];
  const requiredLimits: Record<string, number> = {};
  for (const k of limitNames) requiredLimits[k] = (adapter.limits as unknown as Record<string, number>)[k];
  const gpuDevice = await adapter.requestDevice({ requiredLimits });
  _tfjsKeepAlive = [gpu, adapter, gpuDevice];
  const tf = await import('@tensorflow/tfjs-core');
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  // Small ops would otherwise run on the CPU, which is not what this bench compares.
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => new WebGPUBackend(gpuDevice, adapter.info), 10);
  let wasm = false;
  try {
    const wasmMod = await import('@tensorflow/tfjs-backend-wasm');
    const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
    wasmMod.setWasmPaths(join(dist, '/'));
    wasm = true;
  } catch {
    wasm = false;
  }
  return { tf, wasm };
}

/** The parts of tfjs's WebGPUBackend that `tfjsSync` uses (internal API of tfjs-backend-webgpu 4.22). */
interface WebGpuBackendInternals {
  device: GPUDevice;
  commandEncoder: GPUCommandEncoder | null;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  tensorMap: { get(dataId: object): { resource?: unknown } | undefined };
}

const stagingBuffers = new WeakMap<GPUDevice, GPUBuffer>();

/**
 * Waits for tfjs's work on `t` the way metagrad's benches wait for theirs (`device.read(buffer, 4)`): append a 4-byte
 * copy of t's GPU buffer to tfjs's pending commands, submit them once and map the staging buffer — what tfjs's own
 * read does, minus the kernel: reading via `tf.slice(...).data()` would add a slice dispatch to every tfjs timing.
 * Where t has no GPU buffer (the wasm backend), a 1-element slice is read instead.
 */
export async function tfjsSync(tf: Tf, t: TfTensor): Promise<void> {
  const backend = tf.backend() as unknown as Partial<WebGpuBackendInternals>;
  const resource = backend.tensorMap?.get(t.dataId)?.resource as GPUBuffer | undefined;
  if (
    backend.device &&
    backend.submitQueue &&
    backend.ensureCommandEncoderReady &&
    backend.endComputePassEncoder &&
    resource &&
    typeof resource.mapAsync === 'function'
  ) {
    let staging = stagingBuffers.get(backend.device);
    if (!staging) {
      staging = backend.device.createBuffer({ size: 4, usage: 0x0001 | 0x0008 }); // MAP_READ | COPY_DST
      stagingBuffers.set(backend.device, staging);
    }
    // As tfjs's getBufferData does: close the open compute pass, copy in the same encoder, one submit.
    backend.ensureCommandEncoderReady();
    backend.endComputePassEncoder();
    backend.commandEncoder!.copyBufferToBuffer(resource, 0, staging, 0, 4);
    backend.submitQueue();
    await staging.mapAsync(0x0001); // GPUMapMode.READ
    staging.getMappedRange(0, 4);
    staging.unmap();
    return;
  }
  const probe = tf.slice(tf.reshape(t, [-1]), 0, 1);
  await probe.data();
  probe.dispose();
}

async function tfTime(tf: Tf, backend: string, reps: number, build: () => TfTensor[], run: (inputs: TfTensor[]) => TfTensor): Promise<number | null> {
  try {
    if (!(await tf.setBackend(backend))) return null;
    const inputs = build();
    const ms = await timeIt(
      reps,
      () => run(inputs),
      (out) => tfjsSync(tf, out),
      (out) => out.dispose(),
    );
    for (const t of inputs) t.dispose();
    return ms;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- metagrad

async function mgTime(device: Device, reps: number, run: () => Tensor): Promise<number> {
  await device.sync();
  return timeIt(
    reps,
    run,
    async (out) => {
      await device.read(out.buffer, 4);
    },
    (out) => out.dispose(),
  );
}

type AnyOp = (...args: unknown[]) => Tensor;
function op(name: string): AnyOp | null {
  const f = (metagrad as unknown as Record<string, unknown>)[name];
  return typeof f === 'function' ? (f as AnyOp) : null;
}

/** TensorFlow.js on the same device, or the reason it could not be set up (the bench then reports metagrad alone). */
export async function trySetupTfjs(device: Device): Promise<{ tf: Tf | null; wasm: boolean; tfjsError?: string }> {
  try {
    return await setupTfjs(device);
  } catch (e) {
    return { tf: null, wasm: false, tfjsError: (e as Error).message };
  }
}

export async function benchKernels(opts: { quick: boolean; device?: Device }): Promise<KernelsBench> {
  const device = opts.device ?? (await createNodeDevice({ setDefault: false }));
  const reps = opts.quick ? 3 : 7;
  const rows: KernelRow[] = [];
  const { tf, wasm, tfjsError } = await trySetupTfjs(device);
  // tfjs-webgpu gets metagrad's repetitions (the ratio compares their medians); only the wasm CPU reference, which is
  // not in the ratio, is cut to 3 on the large cases.
  const tfBoth = async (build: () => TfTensor[], run: (i: TfTensor[]) => TfTensor, big = false) => ({
    webgpu: tf ? await tfTime(tf, 'webgpu', reps, build, run) : null,
    wasm: tf && wasm ? await tfTime(tf, 'wasm', big ? Math.min(reps, 3) : reps, build, run) : null,
  });
  const push = (row: Omit<KernelRow, 'ratio' | 'tfjsWebgpuMs' | 'tfjsWasmMs'>, t: { webgpu: number | null; wasm: number | null }) =>
    rows.push({
      ...row,
      tfjsWebgpuMs: t.webgpu,
      tfjsWasmMs: t.wasm,
      ratio: t.webgpu === null ? null : t.webgpu / row.ms,
    });

  const tuning = await autotune(device);
  try {
    // Matmul, square sizes.
    for (const n of [256, 512, 1024]) {
      const a = tensor(randomData(n * n, 1), [n, n], 'f32', device);
      const b = tensor(randomData(n * n, 2), [n, n], 'f32', device);
      const ms = await mgTime(device, reps, () => matmul(a, b));
      const t = await tfBoth(
        () => [tf!.tensor2d(randomData(n * n, 1), [n, n]), tf!.tensor2d(randomData(n * n, 2), [n, n])],
        ([x, y]) => tf!.matMul(x, y),
        n >= 1024,
      );
      const chosen = variantName(chooseMatmulVariant(device, { M: n, N: n, K: n, batch: 1 }));
      push({ op: 'matmul', shape: `${n}x${n}x${n}`, variant: chosen, ms, gflops: (2 * n ** 3) / ms / 1e6 }, t);
      if (!opts.quick) {
        for (const v of MATMUL_VARIANTS) {
          if (v.kind === 'simple' && n > 512) continue;
          const vms = await mgTime(device, 3, () => matmul(a, b, { variant: v }));
          rows.push({
            op: 'matmul',
            shape: `${n}x${n}x${n}`,
            variant: variantName(v),
            ms: vms,
            gflops: (2 * n ** 3) / vms / 1e6,
            tfjsWebgpuMs: null,
            tfjsWasmMs: null,
            ratio: null,
          });
        }
      }
      a.dispose();
      b.dispose();
    }

    const conv2d = op('conv2d');
    if (conv2d) {
      for (const [N, C, H, O, k] of [
        [32, 1, 28, 6, 5],
        [32, 16, 16, 32, 3],
      ]) {
        const x = tensor(randomData(N * C * H * H, 3), [N, C, H, H], 'f32', device);
        const w = tensor(randomData(O * C * k * k, 4), [O, C, k, k], 'f32', device);
        const Ho = H - k + 1;
        const ms = await mgTime(device, reps, () => conv2d(x, w));
        const t = await tfBoth(
          () => [tf!.tensor4d(randomData(N * H * H * C, 3), [N, H, H, C]), tf!.tensor4d(randomData(k * k * C * O, 4), [k, k, C, O])],
          ([xi, wi]) => tf!.conv2d(xi as import('@tensorflow/tfjs-core').Tensor4D, wi as import('@tensorflow/tfjs-core').Tensor4D, 1, 'valid'),
        );
        push(
          {
            op: 'conv2d',
            shape: `${N}x${C}x${H}x${H} -> ${O}ch ${k}x${k}`,
            ms,
            gflops: (2 * N * O * Ho * Ho * C * k * k) / ms / 1e6,
          },
          t,
        );
        x.dispose();
        w.dispose();
      }
    }

    const add = op('add');
    if (add) {
      for (const n of [1 << 20, 1 << 24]) {
        const x = tensor(randomData(n, 5), [n], 'f32', device);
        const y = tensor(randomData(n, 6), [n], 'f32', device);
        const ms = await mgTime(device, reps, () => add(x, y));
        const t = await tfBoth(
          () => [tf!.tensor1d(randomData(n, 5)), tf!.tensor1d(randomData(n, 6))],
          ([a, b]) => tf!.add(a, b),
          n > 1 << 20,
        );
        push({ op: 'add', shape: n === 1 << 20 ? '1M' : '16M', ms, gbps: (12 * n) / ms / 1e6 }, t);
        x.dispose();
        y.dispose();
      }
      // 100 dependent small adds, one readback: what dispatch batching is for.
      const small = tensor(randomData(1024, 7), [1024], 'f32', device);
      const chain = () => {
        let acc = add(small, small);
        for (let i = 1; i < 100; i++) {
          const next = add(acc, small);
          acc.dispose();
          acc = next;
        }
        return acc;
      };
      const ms = await mgTime(device, reps, chain);
      const t = await tfBoth(
        () => [tf!.tensor1d(randomData(1024, 7))],
        ([s]) =>
          tf!.tidy(() => {
            let acc = tf!.add(s, s);
            for (let i = 1; i < 100; i++) acc = tf!.add(acc, s);
            return acc;
          }),
      );
      push({ op: 'add chain', shape: '100 x [1024], 1 readback', ms }, t);
      small.dispose();
    }

    const sum = op('sum');
    if (sum) {
      const n = 1 << 24;
      const x = tensor(randomData(n, 8), [n], 'f32', device);
      const ms = await mgTime(device, reps, () => sum(x));
      const t = await tfBoth(
        () => [tf!.tensor1d(randomData(n, 8))],
        ([a]) => tf!.sum(a),
        true,
      );
      push({ op: 'sum', shape: '16M', ms, gbps: (4 * n) / ms / 1e6 }, t);
      x.dispose();
    }
  } finally {
    if (!opts.device) device.destroy();
  }
  return {
    adapter: device.adapter,
    tuning: Object.fromEntries(Object.entries(tuning.matmul).map(([k, v]) => [k, variantName(v)])),
    ...(tfjsError ? { tfjsError } : {}),
    rows,
  };
}

/** Variants timed one by one in the full (non-quick) run, to show what autotuning chooses between. */
const MATMUL_VARIANTS: MatmulVariant[] = [
  { kind: 'register', rows: 8, cols: 16, wgX: 8, wgY: 4 },
  { kind: 'register', rows: 4, cols: 8, wgX: 8, wgY: 4 },
  { kind: 'register', rows: 4, cols: 4, wgX: 8, wgY: 4 },
  { kind: 'workgroup', tileM: 64, tileN: 64, tileK: 16, threadRows: 4, threadCols: 4 },
  { kind: 'workgroup', tileM: 32, tileN: 32, tileK: 16, threadRows: 4, threadCols: 4 },
  { kind: 'simple' },
];

const num = (v: number | null | undefined, digits = 2) => (v === null || v === undefined ? '—' : v.toFixed(digits));

export function formatKernelsTable(r: KernelsBench): string {
  const lines = [
    `tuned matmul: ${Object.entries(r.tuning)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}${r.tfjsError ? `\ntfjs unavailable: ${r.tfjsError}` : ''}`,
    '',
    '| op | shape | variant | ms | GFLOP/s | GB/s | tfjs-webgpu ms | tfjs-wasm ms | ratio (tfjs/metagrad) |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const row of r.rows) {
    lines.push(
      `| ${row.op} | ${row.shape} | ${row.variant ?? ''} | ${num(row.ms)} | ${num(row.gflops, 1)} | ${num(row.gbps, 1)} | ${num(row.tfjsWebgpuMs)} | ${num(row.tfjsWasmMs)} | ${num(row.ratio)} |`,
    );
  }
  return lines.join('\n');
}
