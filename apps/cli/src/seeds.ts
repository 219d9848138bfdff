/**
 * @file Seeds as shards: per-seed result files, seed lists and shards, and `metagrad merge`.
 *
 * A seeded experiment (a `SeededSection` of @metagrad/experiments: E1 evograd-toy, E2 evograd-rotation, E3
 * mwn-label-noise, E5 hyperdistill-sinusoid, E7 amaml-regression) runs one seed at a time; each seed's result is
 * a plain JSON file, and the section's summary (rows, intervals, figures, results.json) is recomputed from those
 * files, so seeds run in several processes, on several machines or at different times combine.
 *
 * Flags (stable: the queue layer in ./queue builds on them):
 *   metagrad run <exp> [--quick] [--seeds <list>] [--shard <i>/<N>] [--jobs <N>] [--extras | --no-extras]
 *                      [--no-merge] [--out <dir>] [--json]
 *   - `--seeds 0-9`, `0,2,5`, `0-3,8`: the seeds to run (default: the section's own, `defaultSeeds(quick)`).
 *   - `--shard i/N` (1 ≤ i ≤ N): only the i-th of N shards of those seeds, dealt round-robin (seed k of the sorted
 *     list goes to shard (k mod N) + 1).
 *   - `--jobs N`: the seeds in N local child processes (`metagrad run <exp> --seeds <subset> --no-extras
 *     --no-merge …`), then the extras here (alone, so a timing extra is not slowed by the seeds), then the summary.
 *   - `--extras`: also run the section's non-seeded units (E1's GPU cross-check and trajectories, E5's side-by-side
 *     cost timing); they run by default only when neither --seeds nor --shard is given.
 *   - `--no-merge`: write the per-seed files only (no summary, results.json or figures).
 *   A plain `metagrad run <exp>` = its default seeds and extras in this process, then the summary, as before.
 *   metagrad merge <dir…> --out <dir> [--json]
 *   - reads every per-seed and extra file under the given directories (searched recursively), recomputes each
 *     experiment's summary, intervals and figures without a device, and writes `<out>/results.json`, report.md,
 *     figures/ and copies of the files under `<out>/seeds/`. The same file found twice (same bytes) counts once;
 *     two different files for one seed or extra (`DuplicateSeedError`), quick and full files of one experiment
 *     (`MixedVariantError`), or a file of another kind (`SeedFileError`) are errors that name the files. Files of
 *     other code versions merge, with a note.
 *
 * File layout (under `--out`, default runs/<exp>):
 *   seeds/<exp>/seed-<n>.json    { kind: 'metagrad-seed', version: 1, experiment, variant: 'quick'|'full', seed,
 *                                   codeVersion, date, seconds, adapter, json }
 *   seeds/<exp>/extra-<name>.json { kind: 'metagrad-extra', version: 1, experiment, variant, extra: name,
 *                                   codeVersion, date, seconds, adapter, json }
 *   results.json, report.md, figures/   the summary of the seeds of this run (`run`) or of every file (`merge`)
 * `<exp>` is the experiment id (`evograd-toy`), `json` what the section's `runSeed` (or extra) returned, as plain
 * JSON; `codeVersion` is `<cli version>+<git commit>` (`-dirty` for uncommitted changes) or the CLI version alone.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AdapterDescription } from '@metagrad/tensor';
import type { SeededSection } from '@metagrad/experiments';

export type Variant = 'quick' | 'full';

interface UnitFileBase {
  version: 1;
  experiment: string;
  variant: Variant;
  codeVersion: string;
  /** When the unit finished (ISO). */
  date: string;
  seconds: number;
  adapter: AdapterDescription | null;
  json: unknown;
}
export interface SeedFile extends UnitFileBase {
  kind: 'metagrad-seed';
  seed: number;
}
export interface ExtraFile extends UnitFileBase {
  kind: 'metagrad-extra';
  extra: string;
}
export type UnitFile = SeedFile | ExtraFile;

/** A per-seed or extra file that cannot be read as one. */
export class SeedFileError extends Error {
  override name = 'SeedFileError';
}
/** Two different files for the same seed (or extra) of an experiment. */
export class DuplicateSeedError extends Error {
  override name = 'DuplicateSeedError';
}
/** Quick and full files of the same experiment in one merge. */
export class MixedVariantError extends Error {
  override name = 'MixedVariantError';
}

/** `0-9`, `0,2,5`, `0-3,8` → sorted distinct seeds. */
export function parseSeedList(spec: string): number[] {
  const seeds = new Set<number>();
  for (const part of spec.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new RangeError(`invalid seed list '${spec}' (use e.g. 0-9, 0,2,5 or 0-3,8)`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new RangeError(`invalid seed range '${part.trim()}' in '${spec}' (high end below low end)`);
    if (hi - lo > 100_000) throw new RangeError(`seed range '${part.trim()}' is too long`);
    for (let s = lo; s <= hi; s++) seeds.add(s);
  }
  return [...seeds].sort((a, b) => a - b);
}

/** `2/4` → { index: 2, count: 4 } (1-based). */
export function parseShard(spec: string): { index: number; count: number } {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw new RangeError(`invalid shard '${spec}' (use i/N with 1 ≤ i ≤ N, e.g. 1/4)`);
  return { index, count };
}

/** The i-th of N round-robin shards of the sorted seeds (so every shard gets early and late seeds alike). */
export function shardSeeds(seeds: readonly number[], shard: { index: number; count: number }): number[] {
  return [...seeds].sort((a, b) => a - b).filter((_, k) => k % shard.count === shard.index - 1);
}

/** Splits seeds into `jobs` round-robin groups (empty groups dropped). */
export function splitForJobs(seeds: readonly number[], jobs: number): number[][] {
  return Array.from({ length: jobs }, (_, i) => shardSeeds(seeds, { index: i + 1, count: jobs })).filter((g) => g.length > 0);
}

/** `1-3,7`: the shortest --seeds list for a set of seeds. */
export function formatSeedList(seeds: readonly number[]): string {
  const sorted = [...new Set(seeds)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

export const seedDir = (out: string, experiment: string): string => join(out, 'seeds', experiment);
export const seedPath = (out: string, experiment: string, seed: number): string => join(seedDir(out, experiment), `seed-${seed}.json`);
export const extraPath = (out: string, experiment: string, extra: string): string => join(seedDir(out, experiment), `extra-${extra}.json`);

let cachedVersion: string | undefined;
/** `<cli version>+<commit>[-dirty]`, or the version alone outside a git checkout; METAGRAD_CODE_VERSION overrides it. */
export function codeVersion(): string {
  if (process.env.METAGRAD_CODE_VERSION) return process.env.METAGRAD_CODE_VERSION;
  if (cachedVersion) return cachedVersion;
  const here = dirname(fileURLToPath(import.meta.url));
  const version = (JSON.parse(readFileSync(join(here, '..', 'package.json'), 'utf8')) as { version: string }).version;
  let commit = '';
  try {
    const git = (args: string[]) =>
      execFileSync('git', args, {
        cwd: here,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 5000,
      }).trim();
    commit = git(['rev-parse', '--short', 'HEAD']);
    if (commit && git(['status', '--porcelain', '--untracked-files=no', '--', '.', '../../packages']) !== '') commit += '-dirty';
  } catch {
    /* not a git checkout (an installed package) */
  }
  cachedVersion = commit ? `${version}+${commit}` : version;
  return cachedVersion;
}

/** Writes one unit's file (creating its directory); returns its path. */
export function writeUnitFile(out: string, file: UnitFile): string {
  const path = file.kind === 'metagrad-seed' ? seedPath(out, file.experiment, file.seed) : extraPath(out, file.experiment, file.extra);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`);
  return path;
}

const UNIT_NAME = /^(seed-\d+|extra-[A-Za-z0-9._-]+)\.json$/;

function findUnitFiles(dir: string): string[] {
  if (!existsSync(dir)) throw new SeedFileError(`no such directory: ${dir}`);
  const found: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.isFile() && UNIT_NAME.test(entry.name)) found.push(p);
    }
  };
  if (statSync(dir).isDirectory()) walk(dir);
  else found.push(dir);
  return found.sort();
}

/** Reads and checks one unit file. */
export function readUnitFile(path: string): UnitFile {
  let f: Record<string, unknown>;
  try {
    f = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    if (typeof f !== 'object' || f === null) throw new Error('not an object');
  } catch (e) {
    throw new SeedFileError(`${path}: not JSON (${(e as Error).message})`);
  }
  if (f?.kind !== 'metagrad-seed' && f?.kind !== 'metagrad-extra')
    throw new SeedFileError(`${path}: kind is ${JSON.stringify(f?.kind)}, not a metagrad per-seed or extra file`);
  if (f.version !== 1) throw new SeedFileError(`${path}: version ${String(f.version)} (this metagrad reads version 1)`);
  if (typeof f.experiment !== 'string' || !f.experiment) throw new SeedFileError(`${path}: no experiment`);
  if (f.variant !== 'quick' && f.variant !== 'full') throw new SeedFileError(`${path}: variant ${JSON.stringify(f.variant)} (quick or full)`);
  if (f.kind === 'metagrad-seed' && !(Number.isInteger(f.seed) && (f.seed as number) >= 0)) throw new SeedFileError(`${path}: seed ${JSON.stringify(f.seed)}`);
  if (f.kind === 'metagrad-extra' && (typeof f.extra !== 'string' || !f.extra)) throw new SeedFileError(`${path}: no extra name`);
  if (!('json' in f)) throw new SeedFileError(`${path}: no json`);
  return f as unknown as UnitFile;
}

/** What a merge found for one experiment. */
export interface CollectedExperiment {
  experiment: string;
  variant: Variant;
  /** Seed files in seed order. */
  seeds: { path: string; file: SeedFile }[];
  extras: { path: string; file: ExtraFile }[];
  codeVersions: string[];
}

/**
 * Every unit file under `dirs`, grouped by experiment: the same bytes twice count once, two different files for a
 * seed or extra are a `DuplicateSeedError`, quick and full of one experiment a `MixedVariantError`.
 */
export function collectUnitFiles(dirs: readonly string[]): CollectedExperiment[] {
  const byExp = new Map<string, { units: Map<string, { path: string; text: string; file: UnitFile }> }>();
  const seenPaths = new Set<string>();
  for (const dir of dirs) {
    for (const path of findUnitFiles(dir)) {
      const real = realpathSync(path);
      if (seenPaths.has(real)) continue;
      seenPaths.add(real);
      const file = readUnitFile(path);
      const text = readFileSync(path, 'utf8');
      const exp = byExp.get(file.experiment) ?? { units: new Map() };
      byExp.set(file.experiment, exp);
      const key = file.kind === 'metagrad-seed' ? `seed ${file.seed}` : `extra '${file.extra}'`;
      const prior = exp.units.get(key);
      if (prior) {
        if (prior.text === text) continue;
        throw new DuplicateSeedError(`${file.experiment}: ${key} twice, in ${prior.path} and ${path} (remove one, or merge them separately)`);
      }
      exp.units.set(key, { path, text, file });
    }
  }
  const out: CollectedExperiment[] = [];
  for (const [experiment, { units }] of byExp) {
    const all = [...units.values()];
    const variants = new Set(all.map((u) => u.file.variant));
    if (variants.size > 1) {
      const q = all.find((u) => u.file.variant === 'quick')!;
      const f = all.find((u) => u.file.variant === 'full')!;
      throw new MixedVariantError(`${experiment}: quick and full results cannot be merged (quick: ${q.path}, full: ${f.path})`);
    }
    const seeds = all
      .filter((u) => u.file.kind === 'metagrad-seed')
      .map((u) => ({ path: u.path, file: u.file as SeedFile }))
      .sort((a, b) => a.file.seed - b.file.seed);
    const extras = all
      .filter((u) => u.file.kind === 'metagrad-extra')
      .map((u) => ({ path: u.path, file: u.file as ExtraFile }))
      .sort((a, b) => a.file.extra.localeCompare(b.file.extra));
    out.push({
      experiment,
      variant: all[0].file.variant,
      seeds,
      extras,
      codeVersions: [...new Set(all.map((u) => u.file.codeVersion))].sort(),
    });
  }
  return out.sort((a, b) => a.experiment.localeCompare(b.experiment));
}

/** Seeds and extras of one experiment as `summarise` takes them. */
export function summaryInputs(c: Pick<CollectedExperiment, 'seeds' | 'extras'>): {
  perSeed: { seed: number; json: unknown }[];
  extras: Record<string, unknown>;
} {
  return {
    perSeed: c.seeds.map((s) => ({ seed: s.file.seed, json: s.file.json })),
    extras: Object.fromEntries(c.extras.map((e) => [e.file.extra, e.file.json])),
  };
}

/** Copies collected files into `<out>/seeds/<exp>/` (skipping those already there), so a merged directory can be merged again. */
export function copyUnitFiles(c: CollectedExperiment, out: string): void {
  for (const u of [...c.seeds, ...c.extras]) {
    const target = u.file.kind === 'metagrad-seed' ? seedPath(out, c.experiment, u.file.seed) : extraPath(out, c.experiment, u.file.extra);
    if (existsSync(target) && realpathSync(target) === realpathSync(u.path)) continue;
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, readFileSync(u.path));
  }
}

/** The section's seeds for this run: --seeds (or its defaults), then --shard. */
export function seedsForRun(section: SeededSection, opts: { quick: boolean; seeds?: string; shard?: string }): number[] {
  const all = opts.seeds !== undefined ? parseSeedList(opts.seeds) : section.defaultSeeds(opts.quick);
  return opts.shard !== undefined ? shardSeeds(all, parseShard(opts.shard)) : all;
}

/** Paths relative to the working directory, for messages. */
export const shown = (p: string): string => relative(process.cwd(), p) || '.';
