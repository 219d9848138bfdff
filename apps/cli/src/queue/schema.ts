/**
 * @file What travels through the queue: one job is one shard (an experiment, its variant, a few seeds, the code
 * version it must run with); its result is the per-seed JSON files the shard's `metagrad run` wrote. Both are plain
 * JSON, checked on arrival (a worker of another version, or anything else writing to the queue, fails loudly).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Bumped when ShardJob or ShardResult change shape; a worker refuses jobs of another schema. */
export const JOB_SCHEMA = 1;

/** The queue every `metagrad worker` listens on unless `--queue` names another. */
export const DEFAULT_QUEUE = 'metagrad-shards';

/** One shard: `metagrad run <experiment> --seeds <seeds> [--quick]` on whichever worker takes it. */
export interface ShardJob {
  schema: number;
  /** The coordinator's run: job ids are `<runId>-<experiment>-<index>`, so re-enqueueing a run is idempotent. */
  runId: string;
  experiment: string;
  /** `quick` adds `--quick` to the worker's run command. */
  variant: 'quick' | 'full';
  seeds: number[];
  /** Also run the experiment's non-seeded units (`--extras`): set on the first shard of a run that asks for them. */
  extras?: boolean;
  shard: { index: number; count: number };
  /** The coordinator's code version (../seeds.ts codeVersion(), as in the per-seed files); a worker with another one fails the job without retrying. */
  codeVersion: string;
  /** Set by a coordinator that gave up on its run while the shard was running: a worker that takes it again skips it. */
  cancelled?: boolean;
  /** The worker kills the shard's process after this long (then the job fails and is retried); none when absent. */
  timeoutMs?: number;
}

/** One file a shard wrote, relative to its `--out` directory (`seeds/<exp>/seed-<n>.json`, `seeds/<exp>/extra-<name>.json`). */
export interface ShardFile {
  path: string;
  content: string;
}

/** What a worker returns for a shard (stored by BullMQ as the job's return value). */
export interface ShardResult {
  schema: number;
  files: ShardFile[];
  /** `hostname:pid` of the worker that ran it. */
  worker: string;
  wallMs: number;
  codeVersion: string;
}

/** Job ids may not contain ':' (BullMQ's key separator): runId and experiment are restricted to [A-Za-z0-9._-]. */
const SAFE = /^[A-Za-z0-9._-]+$/;

/** The job id of shard `index` of a run. */
export function jobId(runId: string, experiment: string, index: number): string {
  return `${runId}-${experiment}-${index}`;
}

function fail(what: string): never {
  throw new Error(`invalid shard job: ${what}`);
}

/** Checks a job's data (from Redis: anything) and returns it typed. */
export function parseShardJob(data: unknown): ShardJob {
  const d = data as Partial<ShardJob> | null;
  if (typeof d !== 'object' || d === null) fail('not an object');
  if (d.schema !== JOB_SCHEMA) fail(`schema ${String(d.schema)}, this worker reads schema ${JOB_SCHEMA}`);
  if (typeof d.runId !== 'string' || !SAFE.test(d.runId)) fail(`runId ${JSON.stringify(d.runId)}`);
  if (typeof d.experiment !== 'string' || !SAFE.test(d.experiment)) fail(`experiment ${JSON.stringify(d.experiment)}`);
  if (d.variant !== 'quick' && d.variant !== 'full') fail(`variant ${JSON.stringify(d.variant)}`);
  if (!Array.isArray(d.seeds) || d.seeds.length === 0 || !d.seeds.every((s) => Number.isSafeInteger(s) && s >= 0)) fail(`seeds ${JSON.stringify(d.seeds)}`);
  const sh = d.shard;
  if (!sh || !Number.isInteger(sh.index) || !Number.isInteger(sh.count) || sh.index < 0 || sh.index >= sh.count) fail(`shard ${JSON.stringify(sh)}`);
  if (d.extras !== undefined && typeof d.extras !== 'boolean') fail(`extras ${JSON.stringify(d.extras)}`);
  if (typeof d.codeVersion !== 'string' || d.codeVersion === '') fail('codeVersion missing');
  if (d.timeoutMs !== undefined && !(Number.isFinite(d.timeoutMs) && d.timeoutMs > 0)) fail(`timeoutMs ${String(d.timeoutMs)}`);
  return d as ShardJob;
}

/** Checks a shard's result: every path relative, inside the output directory, JSON. */
export function parseShardResult(value: unknown): ShardResult {
  const r = (typeof value === 'string' ? JSON.parse(value) : value) as Partial<ShardResult> | null;
  if (typeof r !== 'object' || r === null || r.schema !== JOB_SCHEMA || !Array.isArray(r.files))
    throw new Error(`invalid shard result: ${JSON.stringify(value)?.slice(0, 200)}`);
  for (const f of r.files) {
    if (typeof f?.path !== 'string' || typeof f.content !== 'string') throw new Error('invalid shard result: a file without path or content');
    if (!isSafeRelativePath(f.path)) throw new Error(`invalid shard result: unsafe path ${JSON.stringify(f.path)}`);
  }
  return r as ShardResult;
}

/** A relative path with no '..', no absolute start, no backslashes or NULs: safe to join under an output directory. */
export function isSafeRelativePath(p: string): boolean {
  if (p === '' || p.startsWith('/') || p.includes('\\') || p.includes('\0')) return false;
  return p.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

/** Splits seeds into shards of at most `perShard` seeds each, in order. */
export function splitSeeds(seeds: number[], perShard: number): number[][] {
  if (!Number.isInteger(perShard) || perShard < 1) throw new Error(`seeds per shard must be a positive integer, got ${perShard}`);
  const out: number[][] = [];
  for (let i = 0; i < seeds.length; i += perShard) out.push(seeds.slice(i, i + perShard));
  return out;
}

/** The @metagrad/cli package directory (holds package.json and bin.mjs), from src/queue/ or from dist/. */
export function cliRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && existsSync(join(dir, 'bin.mjs'))) {
      const name = (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name;
      if (name === '@metagrad/cli') return dir;
    }
    dir = dirname(dir);
  }
  throw new Error(`cannot find the @metagrad/cli package above ${fileURLToPath(import.meta.url)}`);
}
