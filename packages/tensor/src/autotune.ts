/**
 * @file Per-adapter kernel-variant selection: a default from the adapter kind, replaced by a quick measurement
 * (`await autotune(device)`) whose result is cached in memory and, through an injected store, on disk.
 */
import type { RegisterMatmulKey, SimpleMatmulKey, WorkgroupMatmulKey } from '@metagrad/kernels-wgsl';
import type { AdapterDescription, Device } from './device';
import type { Tensor } from './tensor';
import { tensor } from './ops/creation';
import { matmul } from './ops/linalg';

/** A matmul kernel choice; the op derives the rest of the kernel key (vec4 output) from the shapes. */
export type MatmulVariant = SimpleMatmulKey | Omit<RegisterMatmulKey, 'vecOut'> | WorkgroupMatmulKey;

/** Work classes tuned separately: what wins at 64³ is rarely what wins at 512³. */
export type SizeClass = 'small' | 'medium' | 'large';

export interface MatmulTuning {
  /** Bumped when variants or the measuring protocol change, so stale disk entries are ignored. */
  version: number;
  adapterKey: string;
  /** False for the adapter-kind default, true once measured. */
  measured: boolean;
  matmul: Record<SizeClass, MatmulVariant>;
  /** Best-of-reps ms per candidate (by kernel key string) and size class, when measured. */
  timings?: Record<SizeClass, Record<string, number>>;
  date?: string;
}

/** Where tunings persist between processes. Synchronous so the (synchronous) ops can consult it on first use. */
export interface TuningStore {
  load(adapterKey: string): MatmulTuning | undefined;
  save(adapterKey: string, tuning: MatmulTuning): void;
}

export const TUNING_VERSION = 2;

const REGISTER_8x16: MatmulVariant = { kind: 'register', rows: 8, cols: 16, wgX: 8, wgY: 4 };
const REGISTER_4x8: MatmulVariant = { kind: 'register', rows: 4, cols: 8, wgX: 8, wgY: 4 };
const REGISTER_4x4: MatmulVariant = { kind: 'register', rows: 4, cols: 4, wgX: 8, wgY: 4 };
const WORKGROUP_64: MatmulVariant = { kind: 'workgroup', tileM: 64, tileN: 64, tileK: 16, threadRows: 4, threadCols: 4 };
const WORKGROUP_32: MatmulVariant = { kind: 'workgroup', tileM: 32, tileN: 32, tileK: 16, threadRows: 4, threadCols: 4 };
const SIMPLE: MatmulVariant = { kind: 'simple' };

/** Candidates timed per class by `autotune` (a handful, so tuning takes about a second on llvmpipe). */
export const MATMUL_CANDIDATES: Record<SizeClass, MatmulVariant[]> = {
  small: [REGISTER_4x4, REGISTER_4x8, REGISTER_8x16, WORKGROUP_32, SIMPLE],
  medium: [REGISTER_4x8, REGISTER_8x16, { ...REGISTER_8x16, wgX: 4, wgY: 4 }, WORKGROUP_32, WORKGROUP_64],
  large: [REGISTER_8x16, { ...REGISTER_8x16, wgX: 4, wgY: 4 }, { ...REGISTER_8x16, wgX: 16, wgY: 4 }, REGISTER_4x8, WORKGROUP_64, WORKGROUP_32],
};

/** Representative [M, N, K] per class. */
export const MATMUL_TUNING_SIZES: Record<SizeClass, [number, number, number]> = {
  small: [64, 64, 64],
  medium: [256, 256, 256],
  large: [512, 512, 512],
};

const SOFTWARE = /llvmpipe|swiftshader|lavapipe|softpipe|software/i;

export function isSoftwareAdapter(adapter: AdapterDescription): boolean {
  return (
    adapter.name === 'llvmpipe' ||
    adapter.name === 'swiftshader' ||
    adapter.isFallbackAdapter ||
    SOFTWARE.test(`${adapter.vendor} ${adapter.architecture} ${adapter.device} ${adapter.description}`)
  );
}

/** Identifies an adapter across processes (what the disk cache is keyed by). */
export function adapterKey(adapter: AdapterDescription): string {
  return [adapter.name, adapter.vendor, adapter.architecture, adapter.device, adapter.description, adapter.backend, adapter.featureLevel]
    .map((s) => String(s ?? '').trim())
    .join('|');
}

/** The untuned choice: software adapters favour register tiling without workgroup memory, GPUs shared-memory tiles. */
export function defaultTuning(adapter: AdapterDescription): MatmulTuning {
  const software = isSoftwareAdapter(adapter);
  return {
    version: TUNING_VERSION,
    adapterKey: adapterKey(adapter),
    measured: false,
    matmul: software
      ? { small: REGISTER_4x4, medium: REGISTER_4x8, large: REGISTER_8x16 }
      : { small: WORKGROUP_32, medium: WORKGROUP_32, large: WORKGROUP_64 },
  };
}

const tunings = new WeakMap<Device, MatmulTuning>();
let store: TuningStore | null = null;

/** Installs (or removes, with null) the persistent store; Node callers pass `fileTuningStore(...)`. */
export function setTuningStore(s: TuningStore | null): void {
  store = s;
}

/** The tuning in force for a device: measured in this process, else from the store, else the default. */
export function matmulTuning(device: Device): MatmulTuning {
  let t = tunings.get(device);
  if (!t) {
    const key = adapterKey(device.adapter);
    let stored: MatmulTuning | undefined;
    try {
      stored = store?.load(key);
    } catch {
      stored = undefined; // an unreadable cache is the same as no cache
    }
    t = stored && stored.version === TUNING_VERSION && stored.adapterKey === key ? stored : defaultTuning(device.adapter);
    tunings.set(device, t);
  }
  return t;
}

export function sizeClassOf(flops: number): SizeClass {
  if (flops < 1 << 20) return 'small';
  if (flops < 1 << 25) return 'medium';
  return 'large';
}

export interface MatmulDims {
  M: number;
  N: number;
  K: number;
  batch: number;
  transA?: boolean;
  transB?: boolean;
}

function pow2AtLeast(n: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, n)));
}

/** Picks the kernel for one matmul from the device's tuning, shrinking register blocks to skinny outputs. */
export function chooseMatmulVariant(device: Device, dims: MatmulDims): MatmulVariant {
  const { M, N, K, batch } = dims;
  const flops = M * N * K * batch;
  const variant = matmulTuning(device).matmul[sizeClassOf(flops)];
  if (variant.kind === 'workgroup') {
    // Compatibility-mode devices may cap workgroups at 128 invocations.
    const threads = (variant.tileM / variant.threadRows) * (variant.tileN / variant.threadCols);
    return threads <= (device.limits.maxComputeInvocationsPerWorkgroup || 128) ? variant : WORKGROUP_32;
  }
  if (variant.kind !== 'register') return variant;
  // Bᵀ with K % 4 = 0 is read as stored (see ops/linalg.ts), so only these layouts cost a packing dispatch.
  const needsPacking = dims.transA || K % 4 !== 0 || (!dims.transB && N % 4 !== 0);
  // Packing costs two extra dispatches (~35 µs each on llvmpipe): not worth it for a few thousand FMAs.
  if (needsPacking && flops < 1 << 16) return SIMPLE;
  const rows = Math.min(variant.rows, pow2AtLeast(M)) as 1 | 2 | 4 | 8;
  const cols = Math.min(variant.cols, Math.max(4, pow2AtLeast(N))) as 4 | 8 | 16;
  return rows === variant.rows && cols === variant.cols ? variant : { ...variant, rows, cols };
}

export function variantName(v: MatmulVariant): string {
  switch (v.kind) {
    case 'simple':
      return 'simple';
    case 'register':
      return `register ${v.rows}x${v.cols} wg${v.wgX}x${v.wgY}`;
    case 'workgroup':
      return `workgroup ${v.tileM}x${v.tileN}x${v.tileK} t${v.threadRows}x${v.threadCols}`;
  }
}

export interface AutotuneOptions {
  /** Re-measure even when a measured tuning is cached (default false). */
  force?: boolean;
  /** Timed runs per candidate after one warm-up (default 3). */
  reps?: number;
  /** Which classes to measure (default all); the others keep their current choice. */
  classes?: SizeClass[];
}

/**
 * Times each candidate on the representative sizes, keeps the fastest per class, and stores the result for this
 * adapter. Uses the device's queue, so run it when no other work is in flight (at startup).
 */
export async function autotune(device: Device, options: AutotuneOptions = {}): Promise<MatmulTuning> {
  const current = matmulTuning(device);
  if (current.measured && !options.force) return current;
  const reps = options.reps ?? 3;
  const chosen = { ...current.matmul };
  const timings = { small: {}, medium: {}, large: {} } as Record<SizeClass, Record<string, number>>;
  for (const cls of options.classes ?? (['small', 'medium', 'large'] as SizeClass[])) {
    const [M, N, K] = MATMUL_TUNING_SIZES[cls];
    const a = tensor(randomData(M * K), [M, K], 'f32', device);
    const b = tensor(randomData(K * N), [K, N], 'f32', device);
    const tiny = tensor(randomData(64), [8, 8], 'f32', device);
    try {
      // Compile every candidate on a tiny problem first (pipelines are shared across sizes), then time them
      // round-robin so a burst of load elsewhere hits all alike; keep each one's best run and stop timing
      // candidates that are already far behind (the workgroup kernels on llvmpipe take ~10× longer).
      const candidates = MATMUL_CANDIDATES[cls];
      const bestMs = new Map<MatmulVariant, number>();
      for (const variant of candidates) {
        try {
          await timeMatmul(device, tiny, tiny, variant);
          bestMs.set(variant, Infinity);
        } catch {
          // a variant this adapter cannot build (limits) simply drops out
        }
      }
      for (let rep = 0; rep < reps; rep++) {
        const leader = Math.min(...bestMs.values());
        for (const variant of bestMs.keys()) {
          if (bestMs.get(variant)! > 2.5 * leader) continue;
          bestMs.set(variant, Math.min(bestMs.get(variant)!, await timeMatmul(device, a, b, variant)));
        }
      }
      let best = Infinity;
      for (const [variant, ms] of bestMs) {
        timings[cls][variantName(variant)] = ms;
        if (ms < best) {
          best = ms;
          chosen[cls] = variant;
        }
      }
    } finally {
      a.dispose();
      b.dispose();
      tiny.dispose();
    }
  }
  const tuning: MatmulTuning = {
    version: TUNING_VERSION,
    adapterKey: adapterKey(device.adapter),
    measured: true,
    matmul: chosen,
    timings,
    date: new Date().toISOString(),
  };
  tunings.set(device, tuning);
  try {
    store?.save(tuning.adapterKey, tuning);
  } catch {
    /* a read-only cache directory must not break tuning */
  }
  return tuning;
}

async function timeMatmul(device: Device, a: Tensor, b: Tensor, variant: MatmulVariant): Promise<number> {
  await device.sync();
  const t0 = performance.now();
  const c = matmul(a, b, { variant });
  try {
    await device.read(c.buffer, 4);
  } finally {
    c.dispose();
  }
  return performance.now() - t0;
}

function randomData(n: number): Float32Array {
  const d = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    d[i] = (s >>> 8) / 2 ** 23 - 1;
  }
  return d;
}

/** Forgets the in-memory tuning of a device (tests; the store is untouched). */
export function resetTuning(device: Device): void {
  tunings.delete(device);
}

export interface FileStoreIO {
  /** Directory holding the cache file, e.g. `~/.cache/metagrad`. */
  dir: string;
  readFile(path: string): string;
  writeFile(path: string, text: string): void;
  mkdir(path: string): void;
}

/**
 * A JSON-file store that keeps this module free of Node imports: the caller injects the file functions, e.g.
 * `fileTuningStore({ dir: join(homedir(), '.cache/metagrad'), readFile: (p) => readFileSync(p, 'utf8'),
 * writeFile: writeFileSync, mkdir: (p) => mkdirSync(p, { recursive: true }) })`.
 */
export function fileTuningStore(io: FileStoreIO): TuningStore {
  const file = `${io.dir.replace(/\/+$/, '')}/tuning.json`;
  const readAll = (): Record<string, MatmulTuning> => {
    try {
      const parsed = JSON.parse(io.readFile(file)) as { entries?: Record<string, MatmulTuning> };
      return parsed.entries ?? {};
    } catch {
      return {};
    }
  };
  return {
    load: (key) => readAll()[key],
    save: (key, tuning) => {
      const entries = readAll();
      entries[key] = tuning;
      io.mkdir(io.dir);
      io.writeFile(file, JSON.stringify({ entries }, null, 2) + '\n');
    },
  };
}
