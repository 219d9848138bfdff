/**
 * @file Compile bench (`metagrad bench compile`): each workload of bench/compile-workloads.ts as one step function,
 * run eagerly with fusion off, eagerly with lazy fusion, and through `compile(step)`, side by side in one process:
 * three copies of the workload (each with its own state), warmed up together (3 calls each, so the compiled copy is
 * past its warm-up and both recording calls), then `rounds` rounds in which each copy takes one call, the order
 * rotating per round; medians. A call is timed from the step's start until its outputs are computed (every output
 * realised, then a 4-byte readback). Dispatches are `device.counters.dispatches` per call. Because the copies start
 * alike and take the same calls, the eager and compiled copies' outputs of the last round are compared (`relErr`,
 * `agrees` at ≤ 1e-5 relative). The PyTorch CPU column comes from bench/reference/torch_meta.vm.json.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFusion, type Device, type Tensor } from '@metagrad/tensor';
import { compile, type CompileStats, type CompiledFunction } from '@metagrad/autograd';
import { disposeTree, leaves, type ParamTree } from '@metagrad/models';
import { median } from '@metagrad/experiments';
import { compileWorkloads, type CompileWorkload, type StepFn, type StepOutput, type WorkloadGroup, type WorkloadInstance } from './compile-workloads';

type Compiled = CompiledFunction<Tensor[], StepOutput | Promise<StepOutput>>;

export interface CompileGoal {
  goal: string;
  /** null: not measurable in this run (the compiled variant failed, no torch figure). */
  met: boolean | null;
}

export interface CompileRow {
  workload: string;
  group: WorkloadGroup;
  /** Median ms per call: eager with fusion off, eager with lazy fusion, compiled replay (null if it failed). */
  eagerMs: number;
  fusedMs: number;
  compiledMs: number | null;
  /** eagerMs / compiledMs. */
  speedup: number | null;
  /** Dispatches per call (median). */
  eagerDispatches: number;
  fusedDispatches: number;
  compiledDispatches: number | null;
  /** compile(step).stats() after the bench: compile ms (tracing, planning, pipelines) and the plan's figures. */
  compileMs: number | null;
  compileStats: CompileStats | null;
  /** PyTorch CPU median ms (the faster of its thread counts) on the machine of torch_meta.vm.json; null if absent. */
  torchMs: number | null;
  torchThreads: number | null;
  /**
   * Max over output leaves of ‖compiled − eager‖ / ‖eager‖ in the last round, against the fused eager copy (the
   * kernels compile traces with its default fusion: true) and against the unfused one (which also shows how far
   * fusion's rounding has drifted the state over the calls so far); null if a variant failed.
   */
  relErr: number | null;
  relErrUnfused: number | null;
  /** relErr ≤ 1e-5. */
  agrees: boolean | null;
  goals: CompileGoal[];
  note?: string;
  /** The first error a variant threw (that variant's columns are then null or partial). */
  error?: string;
}

export interface CompileBench {
  adapter: Device['adapter'];
  rounds: number;
  torchSource: { file: string; machine: string; date: string } | null;
  rows: CompileRow[];
}

export interface CompileBenchOptions {
  quick: boolean;
  /** Only workloads whose name contains one of these strings. */
  only?: string[];
  /** Timed rounds (default 3 quick, 10 full). */
  rounds?: number;
  /** Progress callback (workload name). */
  onWorkload?(name: string, index: number, total: number): void;
}

const WARM_CALLS = 3;
const AGREE_TOLERANCE = 1e-5;

interface TorchRef {
  rows: { workload: string; torchMs: number; threads: number }[];
  machine: string;
  date: string;
}

function loadTorch(): { ref: TorchRef; file: string } | null {
  const file = fileURLToPath(new URL('./reference/torch_meta.vm.json', import.meta.url));
  if (!existsSync(file)) return null;
  try {
    return { ref: JSON.parse(readFileSync(file, 'utf8')) as TorchRef, file: 'bench/reference/torch_meta.vm.json' };
  } catch {
    return null;
  }
}

/** The faster median over the thread counts measured for this workload. */
function torchFor(ref: TorchRef | undefined, workload: string): { ms: number; threads: number } | null {
  const rows = ref?.rows.filter((r) => r.workload === workload) ?? [];
  if (!rows.length) return null;
  const best = rows.reduce((a, b) => (b.torchMs < a.torchMs ? b : a));
  return { ms: best.torchMs, threads: best.threads };
}

async function realizeAndSync(device: Device, out: StepOutput): Promise<void> {
  const ls = leaves(out);
  // Touching a pending (lazily fused) value's buffer realises it, so every output is computed before the clock stops.
  for (const t of ls) void t.buffer;
  if (ls.length) await device.read(ls[ls.length - 1].buffer, 4);
  else await device.sync();
}

async function hostLeaves(out: StepOutput): Promise<Float32Array[]> {
  return Promise.all(leaves(out).map(async (t) => Float32Array.from((await t.toArray()) as ArrayLike<number>)));
}

/** Max over leaves of ‖a − b‖ / ‖b‖ (‖a‖ when b is zero); Infinity on a structure mismatch or NaN. */
export function relativeError(a: Float32Array[], b: Float32Array[]): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    if (a[i].length !== b[i].length) return Infinity;
    let d = 0;
    let n = 0;
    for (let j = 0; j < a[i].length; j++) {
      d += (a[i][j] - b[i][j]) ** 2;
      n += b[i][j] ** 2;
    }
    const r = n > 0 ? Math.sqrt(d / n) : Math.sqrt(d);
    if (!(r <= worst)) worst = Number.isNaN(r) ? Infinity : r;
  }
  return worst;
}

type VariantKind = 'eager' | 'fused' | 'compiled';

interface Variant {
  kind: VariantKind;
  inst: WorkloadInstance;
  fn: StepFn;
  compiled?: Compiled;
  ms: number[];
  dispatches: number[];
  failed?: string;
}

async function callOnce(device: Device, v: Variant, keep: boolean): Promise<Float32Array[] | null> {
  setFusion(device, v.kind !== 'eager');
  const before = device.counters.dispatches;
  const t0 = performance.now();
  const out = await v.fn(...v.inst.args());
  try {
    await realizeAndSync(device, out);
    v.ms.push(performance.now() - t0);
    v.dispatches.push(device.counters.dispatches - before);
    return keep ? await hostLeaves(out) : null;
  } finally {
    v.inst.accept(out);
  }
}

function goalsFor(row: Omit<CompileRow, 'goals'>): CompileGoal[] {
  const g: CompileGoal[] = [];
  const c = row.compiledMs !== null;
  const name = row.workload;
  const meta = row.group === 'online' || row.group === 'episodic' || row.group === 'init';
  if (row.group === 'chain') g.push({ goal: 'compiled 1 dispatch', met: c ? row.compiledDispatches === 1 : null });
  if (meta)
    g.push({
      goal: 'compiled dispatches ≤ ⅓ eager',
      met: c && row.compiledDispatches !== null ? row.compiledDispatches * 3 <= row.eagerDispatches : null,
    });
  if (row.group === 'episodic' || / (MAML|FOMAML)$/.test(name)) g.push({ goal: 'compiled ≥ 4× eager', met: c ? row.speedup! >= 4 : null });
  if (row.group === 'train') g.push({ goal: 'compiled ≥ 1.3× eager', met: c ? row.speedup! >= 1.3 : null });
  if (/ MAML$/.test(name) || / t1-t2$/.test(name))
    g.push({
      goal: 'compiled ≤ 2× PyTorch',
      met: c && row.torchMs !== null ? row.compiledMs! <= 2 * row.torchMs : null,
    });
  if (row.group === 'episodic' || row.group === 'init')
    g.push({ goal: 'fused dispatches ≤ eager / 1.5', met: row.fusedDispatches * 1.5 <= row.eagerDispatches });
  return g;
}

async function benchWorkload(device: Device, w: CompileWorkload, rounds: number, torch: TorchRef | undefined): Promise<CompileRow> {
  const variants: Variant[] = [];
  let error: string | undefined;
  const fail = (v: Variant, e: unknown): void => {
    v.failed = `${v.kind}: ${(e as Error)?.name ?? 'Error'}: ${(e as Error)?.message ?? String(e)}`;
    error ??= v.failed;
  };
  try {
    for (const kind of ['eager', 'fused', 'compiled'] as VariantKind[]) {
      const inst = await w.make(device);
      const v: Variant = { kind, inst, fn: inst.step, ms: [], dispatches: [] };
      if (kind === 'compiled') {
        v.compiled = compile(inst.step);
        v.fn = v.compiled;
      }
      variants.push(v);
    }
    const live = () => variants.filter((v) => !v.failed);
    for (let i = 0; i < WARM_CALLS; i++) {
      for (const v of live()) {
        try {
          await callOnce(device, v, false);
        } catch (e) {
          fail(v, e);
        }
      }
    }
    for (const v of variants) {
      v.ms = [];
      v.dispatches = [];
    }
    let relErr: number | null = null;
    let relErrUnfused: number | null = null;
    for (let r = 0; r < rounds; r++) {
      const lastRound = r === rounds - 1;
      const outs = new Map<VariantKind, Float32Array[]>();
      const order = variants.map((_, i) => variants[(i + r) % variants.length]);
      for (const v of order) {
        if (v.failed) continue;
        try {
          const host = await callOnce(device, v, lastRound);
          if (host) outs.set(v.kind, host);
        } catch (e) {
          fail(v, e);
        }
      }
      if (lastRound && outs.has('compiled')) {
        if (outs.has('fused')) relErr = relativeError(outs.get('compiled')!, outs.get('fused')!);
        if (outs.has('eager')) relErrUnfused = relativeError(outs.get('compiled')!, outs.get('eager')!);
      }
    }
    const get = (k: VariantKind) => variants.find((v) => v.kind === k && !v.failed && v.ms.length);
    const eager = get('eager');
    const fused = get('fused');
    const comp = get('compiled');
    const stats = comp?.compiled?.stats() ?? null;
    const compiledMs = comp ? median(comp.ms) : null;
    const eagerMs = eager ? median(eager.ms) : NaN;
    let compiledDispatches = comp ? median(comp.dispatches) : null;
    // A replay that encodes its plan without going through device.dispatch leaves the counter alone: the plan's count.
    if (compiledDispatches === 0 && stats && Number.isFinite(stats.dispatchesPerReplay)) compiledDispatches = stats.dispatchesPerReplay;
    const t = torchFor(torch, w.name);
    const row: Omit<CompileRow, 'goals'> = {
      workload: w.name,
      group: w.group,
      eagerMs,
      fusedMs: fused ? median(fused.ms) : NaN,
      compiledMs,
      speedup: compiledMs !== null ? eagerMs / compiledMs : null,
      eagerDispatches: eager ? median(eager.dispatches) : NaN,
      fusedDispatches: fused ? median(fused.dispatches) : NaN,
      compiledDispatches,
      compileMs: stats ? stats.compileMs : null,
      compileStats: stats,
      torchMs: t?.ms ?? null,
      torchThreads: t?.threads ?? null,
      relErr,
      relErrUnfused,
      agrees: relErr === null ? null : relErr <= AGREE_TOLERANCE,
      ...(w.note ? { note: w.note } : {}),
      ...(error ? { error } : {}),
    };
    return { ...row, goals: goalsFor(row) };
  } finally {
    setFusion(device, undefined);
    for (const v of variants) {
      try {
        v.compiled?.dispose();
      } finally {
        v.inst.dispose();
      }
    }
  }
}

export async function benchCompile(device: Device, opts: CompileBenchOptions): Promise<CompileBench> {
  const torch = loadTorch();
  const rounds = opts.rounds ?? (opts.quick ? 3 : 10);
  const chosen = compileWorkloads().filter((w) => !opts.only || opts.only.some((s) => w.name.includes(s)));
  const rows: CompileRow[] = [];
  for (const [i, w] of chosen.entries()) {
    opts.onWorkload?.(w.name, i, chosen.length);
    rows.push(await benchWorkload(device, w, rounds, torch?.ref));
  }
  return {
    adapter: device.adapter,
    rounds,
    torchSource: torch ? { file: torch.file, machine: torch.ref.machine, date: torch.ref.date } : null,
    rows,
  };
}

const fmt = (x: number | null, digits = 1): string => (x === null || !Number.isFinite(x) ? '–' : x.toFixed(digits));
const mark = (m: boolean | null): string => (m === null ? '?' : m ? '✓' : '✗');

export function formatCompileTable(r: CompileBench): string {
  const lines = [
    '| workload | eager ms | fused ms | compiled ms | speedup | dispatches eager / fused / compiled | compile ms | PyTorch CPU ms | agrees | goals |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|---|',
  ];
  for (const row of r.rows) {
    const disp = `${fmt(row.eagerDispatches, 0)} / ${fmt(row.fusedDispatches, 0)} / ${fmt(row.compiledDispatches, 0)}`;
    const unfused = row.relErrUnfused === null ? '' : `; ${row.relErrUnfused.toExponential(1)} vs unfused`;
    const agrees = row.agrees === null ? '–' : `${row.agrees ? 'yes' : '**NO**'} (${row.relErr!.toExponential(1)}${unfused})`;
    const goals = row.goals.map((g) => `${mark(g.met)} ${g.goal}`).join('; ');
    const torch = row.torchMs === null ? '–' : `${row.torchMs.toFixed(1)} (${row.torchThreads} thr)`;
    lines.push(
      `| ${row.workload}${row.error ? ' ⚠' : ''} | ${fmt(row.eagerMs)} | ${fmt(row.fusedMs)} | ${fmt(row.compiledMs)} | ${row.speedup === null ? '–' : `${row.speedup.toFixed(2)}×`} | ${disp} | ${fmt(row.compileMs, 0)} | ${torch} | ${agrees} | ${goals} |`,
    );
  }
  const missed = r.rows.flatMap((row) => row.goals.filter((g) => g.met === false).map((g) => `${row.workload}: ${g.goal}`));
  lines.push('');
  lines.push(
    `Medians of ${r.rounds} interleaved rounds after ${WARM_CALLS} warm-up calls per variant, in one process. Eager: fusion off; fused: lazy elementwise fusion; compiled: \`compile(step)\` replays. ` +
      "Agrees: the compiled copy's outputs of the last round against the fused eager copy's (relative error ≤ 1e-5), and against the unfused one's.",
  );
  if (r.torchSource)
    lines.push(`PyTorch CPU: ${r.torchSource.file} (${r.torchSource.machine}, ${r.torchSource.date}), the faster median of its thread counts.`);
  const notes = r.rows.filter((row) => row.note || row.error);
  for (const row of notes) lines.push(`- ${row.workload}: ${[row.note, row.error ? `error: ${row.error}` : ''].filter(Boolean).join('; ')}`);
  lines.push(missed.length ? `Goals missed: ${missed.join('; ')}.` : 'Every measurable goal is met.');
  return lines.join('\n');
}

/** Frees a tree of outputs (exported for the test). */
export const disposeOutputs = (out: StepOutput): void => disposeTree(out as ParamTree);
