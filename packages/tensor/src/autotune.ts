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
const WORKGROUP_64: MatmulVariant = {
  kind: 'workgroup',
  tileM: 64,
  tileN: 64,
  tileK: 16,
  threadRows: 4,
  threadCols: 4,
};
const WORKGROUP_32: MatmulVariant = {
  kind: 'workgroup',
  tileM: 32,
  tileN: 32,
  tileK: 16,
  threadRows: 4,
  threadCols: 4,
};
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
    matmul: software ? { small: REGISTER_4x4, medium: REGISTER_4x8, large: REGISTER_8x16 } : { small: WORKGROUP_32, medium: WORKGROUP_32, large: WORKGROUP_64 },
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
    let stored: unknown;
    try {
      stored = store?.load(key);
    } catch (error) {
      // An unreadable cache is the same as no cache, but say so: a silently ignored cache looks like a slow adapter.
      console.warn(`metagrad: the matmul tuning store could not be read (${String(error)}); using the default for ${key}`);
      stored = undefined;
    }
    t =
      (stored !== undefined && validTuning(stored, key, (why) => console.warn(`metagrad: ignoring the stored matmul tuning for ${key}: ${why}`))) ||
      defaultTuning(device.adapter);
    tunings.set(device, t);
  }
  return t;
}

const SIZE_CLASSES: readonly SizeClass[] = ['small', 'medium', 'large'];

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A variant with its keys sorted, so two spellings of one variant compare equal and any extra key differs. */
const canonical = (v: unknown): string =>
  isRecord(v)
    ? JSON.stringify(
        Object.keys(v)
          .sort()
          .map((k) => [k, v[k]]),
      )
    : JSON.stringify(v);

/**
 * A stored tuning checked field by field: the version and adapter, `measured`, each class's variant (it must be one
 * of that class's candidates: a hand-edited or corrupted kernel shape is never dispatched), the timings and the
 * date. Returns a fresh tuning built from the known candidate objects, or null after calling `reject` with why.
 */
export function validTuning(stored: unknown, key: string, reject: (why: string) => void): MatmulTuning | null {
  const fail = (why: string): null => {
    reject(why);
    return null;
  };
  if (!isRecord(stored)) return fail(`not an object (${typeof stored})`);
  if (stored.version !== TUNING_VERSION) return fail(`version ${JSON.stringify(stored.version)}, this build uses ${TUNING_VERSION}`);
  if (stored.adapterKey !== key) return fail(`adapterKey ${JSON.stringify(stored.adapterKey)} is not this adapter's`);
  if (typeof stored.measured !== 'boolean') return fail(`measured must be a boolean, got ${JSON.stringify(stored.measured)}`);
  if (!isRecord(stored.matmul)) return fail(`matmul must be an object, got ${JSON.stringify(stored.matmul)}`);
  const extra = Object.keys(stored.matmul).filter((k) => !(SIZE_CLASSES as readonly string[]).includes(k));
  if (extra.length) return fail(`matmul has unknown size classes ${extra.join(', ')}`);
  const matmul = {} as Record<SizeClass, MatmulVariant>;
  for (const cls of SIZE_CLASSES) {
    const want = canonical(stored.matmul[cls]);
    const known = MATMUL_CANDIDATES[cls].find((c) => canonical(c) === want);
    if (!known) return fail(`matmul.${cls} ${JSON.stringify(stored.matmul[cls])} is not one of the ${cls} candidates`);
    matmul[cls] = known;
  }
  const tuning: MatmulTuning = { version: TUNING_VERSION, adapterKey: key, measured: stored.measured, matmul };
  if (stored.timings !== undefined) {
    if (!isRecord(stored.timings)) return fail('timings must be an object');
    const timings = {} as Record<SizeClass, Record<string, number>>;
    for (const cls of SIZE_CLASSES) {
      const row = stored.timings[cls] ?? {};
      if (!isRecord(row)) return fail(`timings.${cls} must be an object`);
      timings[cls] = {};
      for (const [name, ms] of Object.entries(row)) {
        // JSON writes a variant that never finished (Infinity) as null.
        if (ms === null) timings[cls][name] = Infinity;
        else if (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0) timings[cls][name] = ms;
        else return fail(`timings.${cls}[${JSON.stringify(name)}] must be a time in ms, got ${JSON.stringify(ms)}`);
      }
    }
    tuning.timings = timings;
  }
  if (stored.date !== undefined) {
    if (typeof stored.date !== 'string') return fail(`date must be a string, got ${JSON.stringify(stored.date)}`);
    tuning.date = stored.date;
  }
  return tuning;
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
  } catch (error) {
    // A read-only cache directory must not break tuning, but the caller should know the result will not persist.
    console.warn(`metagrad: the matmul tuning could not be saved (${String(error)}); it holds for this process only`);
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
  /** The file's text; a missing file throws an error with `code: 'ENOENT'` (as Node's readFileSync does) or returns ''. */
  readFile(path: string): string;
  writeFile(path: string, text: string): void;
  mkdir(path: string): void;
  /** Atomic replace (Node's renameSync): with it, saves write a temporary file and rename it over the cache. */
  rename?(from: string, to: string): void;
  /** Removes a file (a temporary left by a failed save). */
  remove?(path: string): void;
  /** Where warnings go (default console.warn). */
  warn?(message: string): void;
}

type ReadResult = { state: 'ok'; entries: Record<string, unknown> } | { state: 'corrupt'; why: string } | { state: 'unreadable'; why: string };

/**
 * A JSON-file store that keeps this module free of Node imports: the caller injects the file functions, e.g.
 * `fileTuningStore({ dir: join(homedir(), '.cache/metagrad'), readFile: (p) => readFileSync(p, 'utf8'),
 * writeFile: writeFileSync, mkdir: (p) => mkdirSync(p, { recursive: true }), rename: renameSync, remove: rmSync })`.
 *
 * The file holds every adapter's entry; a save replaces only its own adapter's and keeps the others as they are
 * (entries are validated when loaded, by `matmulTuning`, not when kept). A file that is not valid JSON (or whose
 * `entries` is not an object) is moved aside to `tuning.json.corrupt-<time>` before the save writes a new one; a
 * file that exists but cannot be read is left alone and the save is skipped, so no other entry is ever lost.
 */
export function fileTuningStore(io: FileStoreIO): TuningStore {
  const file = `${io.dir.replace(/\/+$/, '')}/tuning.json`;
  const warn = io.warn ?? ((m: string) => console.warn(m));
  const readAll = (): ReadResult => {
    let text: string;
    try {
      text = io.readFile(file);
    } catch (error) {
      if ((error as { code?: unknown })?.code === 'ENOENT') return { state: 'ok', entries: {} };
      return { state: 'unreadable', why: String(error) };
    }
    if (text.trim() === '') return { state: 'ok', entries: {} };
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      return { state: 'corrupt', why: `not JSON (${String(error)})` };
    }
    if (!isRecord(parsed)) return { state: 'corrupt', why: 'the top level is not an object' };
    if (parsed.entries === undefined) return { state: 'ok', entries: {} };
    if (!isRecord(parsed.entries))
      return {
        state: 'corrupt',
        why: `entries is ${Array.isArray(parsed.entries) ? 'an array' : typeof parsed.entries}, not an object`,
      };
    return { state: 'ok', entries: parsed.entries };
  };
  const write = (text: string): void => {
    if (!io.rename) {
      io.writeFile(file, text);
      return;
    }
    const temp = `${file}.tmp-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
    try {
      io.writeFile(temp, text);
      io.rename(temp, file);
    } catch (error) {
      try {
        io.remove?.(temp);
      } catch {
        /* the temporary may never have been created */
      }
      throw error;
    }
  };
  return {
    load: (key) => {
      const read = readAll();
      if (read.state !== 'ok') {
        warn(`metagrad: ${file} is ${read.state} (${read.why}); using the default matmul tuning`);
        return undefined;
      }
      // Own keys only: an adapter key such as 'toString' or '__proto__' must not reach Object.prototype.
      return Object.hasOwn(read.entries, key) ? (read.entries[key] as MatmulTuning) : undefined;
    },
    save: (key, tuning) => {
      const read = readAll();
      if (read.state === 'unreadable') {
        warn(`metagrad: ${file} exists but could not be read (${read.why}); the new tuning was not saved, so that the other adapters' entries are kept`);
        return;
      }
      let entries: Record<string, unknown> = {};
      if (read.state === 'corrupt') {
        const aside = `${file}.corrupt-${Date.now()}`;
        if (!io.rename) {
          warn(`metagrad: ${file} is corrupt (${read.why}) and cannot be moved aside; the new tuning was not saved`);
          return;
        }
        io.rename(file, aside);
        warn(`metagrad: ${file} was corrupt (${read.why}); moved aside to ${aside}`);
      } else {
        entries = read.entries;
      }
      // defineProperty, not assignment: a key such as '__proto__' stays an entry instead of setting the prototype.
      const next: Record<string, unknown> = {};
      const put = (k: string, v: unknown): void => void Object.defineProperty(next, k, { value: v, enumerable: true, writable: true, configurable: true });
      for (const [k, v] of Object.entries(entries)) if (k !== key) put(k, v);
      put(key, tuning);
      io.mkdir(io.dir);
      write(`${JSON.stringify({ entries: next }, null, 2)}\n`);
    },
  };
}
