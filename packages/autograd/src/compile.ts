/**
 * @file compile(fn): a step traced once per input signature (grad/hvp with createGraph, optimiser updates and all),
 * then replayed as one submit of fused kernels over plan-owned buffers.
 *
 * Per signature: the first `warmup` calls run eagerly (first-step flags, pipelines); the next two run eagerly while
 * the device records them, and must issue the same commands with the same host values
 * (a value that differs would be frozen into the replay: TraceError names it); from then on each call replays.
 * Every call that runs fn has tidy's semantics (what fn makes and does not return is freed) and no readback.
 * Tensors fn reads from its closure are bound by reference (in-place updates are seen); arguments are copied into
 * plan slots, outputs into fresh tensors (detached: no graph leaves a compiled call, as with CUDA graphs).
 */
import {
  Plan,
  type Storage,
  Tensor,
  TraceError,
  canonicalize,
  firstDifference,
  fusionOverride,
  getDefaultDevice,
  dispose as disposeAll,
  isKept,
  setFusion,
  type Canonical,
  type Device,
  type Recording,
} from '@metagrad/tensor';

export interface CompileOptions {
  /** Eager calls per signature before the two traced ones (first-step flags such as SGD's momentum init). Default 1. */
  warmup?: number;
  /** Trace two calls and refuse host values that differ between them (they would be frozen). Default true. */
  verify?: boolean;
  /** Lazy elementwise fusion while tracing, so the plan holds fewer, larger kernels. Default true. */
  fusion?: boolean;
  /** Input signatures kept; the least recently used one is dropped (its plan freed). Default 8. */
  maxSignatures?: number;
  /** Device for a function that takes no tensor arguments (default: the first argument's, else the default device). */
  device?: Device;
}

export interface CompileStats {
  /** Calls run eagerly (warm-up), traced, and replayed, over all signatures. */
  eagerCalls: number;
  traces: number;
  replays: number;
  /** Signatures seen (each is traced on its own) and currently cached. */
  signatures: number;
  /** Of the most recently built plan: distinct kernels, dispatches per replay, plan-owned bytes. */
  kernels: number;
  dispatchesPerReplay: number;
  arenaBytes: number;
  /** Milliseconds spent tracing and building plans. */
  compileMs: number;
}

export interface CompiledFunction<A extends unknown[], R> {
  (...args: A): Promise<Awaited<R>>;
  stats(): CompileStats;
  /** Frees every plan (arena, uniforms, held closure tensors); later calls trace again. */
  dispose(): void;
}

/** Where the tensors sit in fn's result: the tree with tensors replaced by output indices. */
type Template = { t: number } | { a: Template[] } | { o: [string, Template][] } | { v: unknown };

interface OutputSpec {
  /** Index into the plan's distinct output storages. */
  storage: number;
  shape: readonly number[];
  dtype: Tensor['dtype'];
}

interface Entry {
  calls: number;
  previous: { canonical: Canonical[]; template: string } | null;
  plan: Plan | null;
  template: Template | null;
  outputs: OutputSpec[];
}

interface Flat {
  tensors: Tensor[];
  signature: string;
}

const objectIds = new WeakMap<object, number>();
let nextObjectId = 1;
function identity(o: object): number {
  let id = objectIds.get(o);
  if (id === undefined) objectIds.set(o, (id = nextObjectId++));
  return id;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

/** Tensors of the argument tree in order, and the signature: structure, shapes, dtypes, requiresGrad, aliasing, statics. */
function flatten(args: readonly unknown[]): Flat {
  const tensors: Tensor[] = [];
  const storages: Storage[] = [];
  const walk = (v: unknown): string => {
    if (v instanceof Tensor) {
      v.assertAlive('pass to a compiled function');
      tensors.push(v);
      let s = storages.indexOf(v.storage);
      if (s < 0) s = storages.push(v.storage) - 1;
      return `T(${v.shape.join('x')},${v.dtype},${v.storage.byteSize},s${s}${v.requiresGrad ? ',rg' : ''},d${v.device.id})`;
    }
    if (Array.isArray(v)) return `[${v.map(walk).join(';')}]`;
    if (isPlainObject(v))
      return `{${Object.keys(v)
        .map((k) => `${JSON.stringify(k)}:${walk(v[k])}`)
        .join(';')}}`;
    if ((typeof v === 'object' && v !== null) || typeof v === 'function') return `#${identity(v)}`;
    return typeof v === 'number' && Object.is(v, -0) ? '-0' : `${typeof v}:${String(v)}`;
  };
  return { tensors, signature: walk(args) };
}

function distinctStorages(tensors: readonly Tensor[]): Storage[] {
  return [...new Set(tensors.map((t) => t.storage))];
}

/** fn's result with each tensor replaced by its index in `out` (a tensor met twice keeps one index). */
function templateOf(value: unknown, out: Tensor[]): Template {
  if (value instanceof Tensor) {
    let i = out.indexOf(value);
    if (i < 0) i = out.push(value) - 1;
    return { t: i };
  }
  if (Array.isArray(value)) return { a: value.map((v) => templateOf(v, out)) };
  if (isPlainObject(value)) return { o: Object.keys(value).map((k) => [k, templateOf(value[k], out)]) };
  return { v: value };
}

function fromTemplate(t: Template, tensors: readonly Tensor[]): unknown {
  if ('t' in t) return tensors[t.t];
  if ('a' in t) return t.a.map((x) => fromTemplate(x, tensors));
  if ('o' in t) return Object.fromEntries(t.o.map(([k, x]) => [k, fromTemplate(x, tensors)]));
  return t.v;
}

/** The template as text, host values included: two traced calls returning different numbers differ here. */
function templateText(t: Template): string {
  return JSON.stringify(t, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
}

/**
 * Compiles `fn(...args) → tensor tree` (sync or async): see the file comment for the calls it traces and replays.
 * fn must not read tensors back (TraceError names the readback), must dispose what it does not return, and must
 * take per-call host values (step counts, seeds) from tensors, a random `Generator` or `device.onReplay`.
 */
export function compile<A extends unknown[], R>(fn: (...args: A) => R, options: CompileOptions = {}): CompiledFunction<A, R> {
  if (typeof fn !== 'function') throw new TypeError(`compile(fn): fn must be a function, got ${typeof fn}`);
  const warmup = options.warmup ?? 1;
  const verify = options.verify ?? true;
  const fusion = options.fusion ?? true;
  const maxSignatures = options.maxSignatures ?? 8;
  if (!Number.isInteger(warmup) || warmup < 0) throw new TraceError(`compile: warmup must be an integer ≥ 0, got ${warmup}`);
  if (!Number.isInteger(maxSignatures) || maxSignatures < 1) throw new TraceError(`compile: maxSignatures must be an integer ≥ 1, got ${maxSignatures}`);
  const cache = new Map<string, Entry>();
  const stats: CompileStats = {
    eagerCalls: 0,
    traces: 0,
    replays: 0,
    signatures: 0,
    kernels: 0,
    dispatchesPerReplay: 0,
    arenaBytes: 0,
    compileMs: 0,
  };

  const entryFor = (signature: string): Entry => {
    let entry = cache.get(signature);
    if (entry) {
      cache.delete(signature); // re-inserted below: Map order is the LRU order
    } else {
      entry = { calls: 0, previous: null, plan: null, template: null, outputs: [] };
      if (cache.size >= maxSignatures) {
        const [oldest, dropped] = cache.entries().next().value as [string, Entry];
        dropped.plan?.dispose();
        cache.delete(oldest);
      }
    }
    cache.set(signature, entry);
    return entry;
  };

  /** One eager call under recording: tidy semantics, outputs detached; a warm-up call stops there. */
  const trace = async (entry: Entry, device: Device, args: A, flat: Flat, warmingUp: boolean): Promise<Awaited<R>> => {
    const t0 = performance.now();
    const argStorages = distinctStorages(flat.tensors);
    for (const s of argStorages) void s.buffer; // realise pending arguments outside the trace
    const previousFusion = fusionOverride(device);
    setFusion(device, fusion);
    let rec: Recording;
    let result: Awaited<R>;
    let outputs: Tensor[];
    let template: Template;
    const began = performance.now();
    rec = device.beginRecording();
    try {
      result = await fn(...args);
      outputs = [];
      template = templateOf(result, outputs);
      for (const t of outputs) void t.buffer; // realise pending outputs inside the trace
    } finally {
      rec = device.endRecording();
      setFusion(device, previousFusion);
    }
    const traceMs = performance.now() - began;
    // Outputs leave without their graph: a detached handle each, the graph (and what it saved) let go.
    const argSet = new Set(flat.tensors);
    const detached = outputs.map((t) => (t.node && !argSet.has(t) ? t.view(t.shape) : t));
    outputs.forEach((t, i) => {
      if (detached[i] !== t) t.dispose();
    });
    result = fromTemplate(template, detached) as Awaited<R>;
    // As tidy: what the call made and does not return is freed (a replay would not recompute it).
    const returned = new Set(outputs);
    for (const t of rec.tensors) if (!returned.has(t) && !isKept(t)) t.dispose();
    const outStorages = distinctStorages(detached);
    const leaked = rec.storages.filter((s) => s.isAlive && !outStorages.includes(s));
    if (leaked.length) {
      disposeAll(result);
      const named = rec.tensors
        .filter((t) => !t.isDisposed && leaked.includes(t.storage))
        .slice(0, 5)
        .map(String)
        .join(', ');
      throw new TraceError(
        `compile: the call left ${leaked.length} tensor storage(s) alive that it does not return${named ? ` (${named})` : ''} ` +
          '(keep()-ed, a `.grad` that backward() set, or held by a pending expression): a replay would not recompute them. ' +
          'Return them, take gradients with grad(loss, params) instead of backward(), or create such state before compiling',
      );
    }
    if (warmingUp) {
      stats.eagerCalls++;
      return result;
    }
    const canonical = verify ? canonicalize(rec, argStorages) : [];
    const text = templateText(template);
    stats.traces++;
    if (verify && !entry.previous) {
      entry.previous = { canonical, template: text };
      stats.compileMs += performance.now() - t0 - traceMs;
      return result;
    }
    if (verify) {
      const diff =
        firstDifference(entry.previous!.canonical, canonical) ??
        (entry.previous!.template !== text
          ? `the function returned different host values on two calls (${entry.previous!.template} vs ${text}): they would be frozen into the replay`
          : null);
      entry.previous = null;
      if (diff) {
        entry.calls = 0; // a later call starts over (warm-up, two traces)
        disposeAll(result);
        throw new TraceError(`compile: ${diff}`);
      }
    }
    entry.plan = new Plan(device, { recording: rec, args: argStorages, outputs: outStorages });
    entry.template = template;
    entry.outputs = detached.map((t) => ({
      storage: outStorages.indexOf(t.storage),
      shape: [...t.shape],
      dtype: t.dtype,
    }));
    stats.kernels = entry.plan.stats.kernels;
    stats.dispatchesPerReplay = entry.plan.stats.dispatches;
    stats.arenaBytes = entry.plan.stats.arenaBytes;
    stats.compileMs += performance.now() - t0 - traceMs;
    return result;
  };

  const replay = (entry: Entry, flat: Flat): Awaited<R> => {
    for (const t of flat.tensors) t.assertVersion();
    const storages = entry.plan!.replay(distinctStorages(flat.tensors));
    const used = new Set<number>();
    const tensors = entry.outputs.map((o) => {
      const s = storages[o.storage];
      if (used.has(o.storage)) s.retain();
      used.add(o.storage);
      return new Tensor(s, o.shape, o.dtype);
    });
    stats.replays++;
    return fromTemplate(entry.template!, tensors) as Awaited<R>;
  };

  const compiled = (async (...args: A): Promise<Awaited<R>> => {
    const flat = flatten(args);
    const device = options.device ?? flat.tensors[0]?.device ?? getDefaultDevice();
    // Inside another compiled function's trace: run eagerly, so the outer trace records this call's work.
    if (device.recording) return await fn(...args);
    const entry = entryFor(flat.signature);
    if (entry.plan?.spoiled) {
      // A failed batch spoiled the arena: start over for this signature (warm-up, two traces, a fresh plan).
      entry.plan.dispose();
      Object.assign(entry, { calls: 0, previous: null, plan: null, template: null, outputs: [] });
    }
    if (entry.plan) return replay(entry, flat);
    return await trace(entry, device, args, flat, entry.calls++ < warmup);
  }) as CompiledFunction<A, R>;
  compiled.stats = () => ({ ...stats, signatures: cache.size });
  compiled.dispose = () => {
    for (const e of cache.values()) e.plan?.dispose();
    cache.clear();
  };
  return compiled;
}
