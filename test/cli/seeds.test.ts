/**
 * @file Seeds as shards: `metagrad run <exp> --seeds … --jobs N` gives the same per-seed files and results.json
 * (timings aside) for N = 1 and 2; `--shard i/N` runs the right seeds; `metagrad merge` of two shard directories
 * equals the unsharded run; duplicate seeds, mixed variants and foreign files are named errors. E1 (evograd-toy,
 * quick) without its GPU extras is the subject: its seeds are float64 host work, so the cost is the child processes.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { mergeSeedFiles } from '../../apps/cli/src/merge';
import type { ReportResults } from '../../apps/cli/src/report';
import {
  DuplicateSeedError,
  MixedVariantError,
  SeedFileError,
  formatSeedList,
  parseSeedList,
  parseShard,
  shardSeeds,
  splitForJobs,
  type SeedFile,
} from '../../apps/cli/src/seeds';

const root = join(__dirname, '..', '..');
const bin = join(root, 'apps', 'cli', 'bin.mjs');
const work = mkdtempSync(join(tmpdir(), 'metagrad-seeds-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function metagrad(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: root,
      env: { ...process.env, METAGRAD_CODE_VERSION: 'test' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const quiet = new Writable({ write: (_c, _e, cb) => cb() });
const seedFiles = (dir: string): string[] => readdirSync(join(dir, 'seeds', 'evograd-toy')).sort();
const seedJson = (dir: string, seed: number) => JSON.parse(readFileSync(join(dir, 'seeds', 'evograd-toy', `seed-${seed}.json`), 'utf8')) as SeedFile;
/** results.json without what differs between runs of the same seeds: dates, durations, the merge's provenance. */
function comparable(dir: string): unknown {
  const r = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as ReportResults;
  return { mode: r.mode, sections: r.sections.map(({ seconds: _s, ...s }) => s) };
}

describe('seed lists and shards', () => {
  it('parses lists and ranges, deals shards round-robin, and names bad input', () => {
    expect(parseSeedList('0-3,8,2')).toEqual([0, 1, 2, 3, 8]);
    expect(formatSeedList([0, 1, 2, 3, 8, 10, 11])).toBe('0-3,8,10-11');
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    expect(shardSeeds([0, 1, 2, 3, 4, 5, 6], { index: 2, count: 3 })).toEqual([1, 4]);
    expect(splitForJobs([0, 1, 2], 4)).toEqual([[0], [1], [2]]);
    expect(() => parseSeedList('0-x')).toThrow(/invalid seed list '0-x'/);
    expect(() => parseSeedList('5-2')).toThrow(/high end below low end/);
    expect(() => parseShard('3/2')).toThrow(/invalid shard '3\/2'/);
    expect(() => parseShard('0/2')).toThrow(/1 ≤ i ≤ N/);
  });
});

describe('metagrad run --seeds --jobs / --shard, metagrad merge', () => {
  const jobs1 = join(work, 'jobs1');
  const jobs2 = join(work, 'jobs2');
  const shard1 = join(work, 'shard1');
  const shard2 = join(work, 'shard2');
  const base = ['run', 'e1', '--quick', '--seeds', '0-3', '--no-extras'];

  it('--jobs 2 writes the same per-seed JSON and results.json (timings aside) as --jobs 1', async () => {
    const [a, b] = await Promise.all([metagrad([...base, '--jobs', '1', '--out', jobs1]), metagrad([...base, '--jobs', '2', '--out', jobs2, '--json'])]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).not.toMatch(/vkCreateInstance|artificially reduced/);
    expect(seedFiles(jobs1)).toEqual(['seed-0.json', 'seed-1.json', 'seed-2.json', 'seed-3.json']);
    expect(seedFiles(jobs2)).toEqual(seedFiles(jobs1));
    for (const seed of [0, 1, 2, 3]) {
      const f = seedJson(jobs2, seed);
      expect({
        kind: f.kind,
        experiment: f.experiment,
        variant: f.variant,
        seed: f.seed,
        codeVersion: f.codeVersion,
      }).toEqual({ kind: 'metagrad-seed', experiment: 'evograd-toy', variant: 'quick', seed, codeVersion: 'test' });
      expect(f.json).toEqual(seedJson(jobs1, seed).json);
    }
    expect(comparable(jobs2)).toEqual(comparable(jobs1));
    // --json prints the section's JSON: seeds, intervals and pairs over the four seeds.
    const json = JSON.parse(b.stdout) as { seeds: number[]; pairs: { a: string; b: string; ci95: number[] }[] };
    expect(json.seeds).toEqual([0, 1, 2, 3]);
    expect(json.pairs.map((p) => `${p.a} − ${p.b}`)).toContain('corr K=2 − corr K=10');
    const results = JSON.parse(readFileSync(join(jobs2, 'results.json'), 'utf8')) as ReportResults;
    expect(results.sections[0].status).toBe('ok');
    expect(results.sections[0].summary.every((r) => r.mark === null || ['✓', '≈', '✗'].includes(r.mark))).toBe(true);
  });

  it('--shard i/N runs its share of the seeds; merging the shards equals the unsharded run', async () => {
    const a = await metagrad([...base, '--shard', '1/2', '--no-merge', '--out', shard1]);
    expect(a.code, a.stderr).toBe(0);
    expect(seedFiles(shard1)).toEqual(['seed-0.json', 'seed-2.json']);
    expect(readdirSync(shard1)).toEqual(['seeds']); // --no-merge: no summary
    // The other shard: seeds 1 and 3 as the second job of `--jobs 2` wrote them (one process fewer than a second --shard run).
    for (const seed of [1, 3]) {
      mkdirSync(join(shard2, 'seeds', 'evograd-toy'), { recursive: true });
      cpSync(join(jobs2, 'seeds', 'evograd-toy', `seed-${seed}.json`), join(shard2, 'seeds', 'evograd-toy', `seed-${seed}.json`));
    }
    const merged = join(work, 'merged');
    const results = await mergeSeedFiles({
      inputs: [shard1, shard2],
      out: merged,
      json: true,
      stdout: quiet,
      stderr: quiet,
    });
    expect(results.merged?.dirs).toEqual([shard1, shard2]);
    expect(comparable(merged)).toEqual(comparable(jobs1));
    expect(seedFiles(merged)).toEqual(seedFiles(jobs1));
    // Merging a merged directory again (into itself, as the queue's coordinator does) changes nothing.
    await mergeSeedFiles({ inputs: [merged, shard1], out: merged, json: true, stdout: quiet, stderr: quiet });
    expect(comparable(merged)).toEqual(comparable(jobs1));
  });

  it('names duplicate seeds, mixed variants, foreign files and flags that do not fit', async () => {
    const dup = join(work, 'dup');
    cpSync(shard1, dup, { recursive: true });
    const f = seedJson(dup, 0);
    writeFileSync(join(dup, 'seeds', 'evograd-toy', 'seed-0.json'), JSON.stringify({ ...f, seconds: f.seconds + 1 }));
    const merge = (inputs: string[]) => mergeSeedFiles({ inputs, out: join(work, 'm-err'), json: true, stdout: quiet, stderr: quiet });
    await expect(merge([shard1, dup])).rejects.toThrow(DuplicateSeedError);
    await expect(merge([shard1, dup])).rejects.toThrow(/evograd-toy: seed 0 twice, in .*shard1.*seed-0\.json and .*dup.*seed-0\.json/);

    const full = join(work, 'full', 'seeds', 'evograd-toy');
    mkdirSync(full, { recursive: true });
    writeFileSync(join(full, 'seed-7.json'), JSON.stringify({ ...seedJson(shard2, 1), seed: 7, variant: 'full' }));
    await expect(merge([shard2, join(work, 'full')])).rejects.toThrow(MixedVariantError);
    await expect(merge([shard2, join(work, 'full')])).rejects.toThrow(/evograd-toy: quick and full results cannot be merged/);

    const foreign = join(work, 'foreign', 'seeds', 'evograd-toy');
    mkdirSync(foreign, { recursive: true });
    writeFileSync(join(foreign, 'seed-9.json'), JSON.stringify({ kind: 'something-else' }));
    await expect(merge([join(work, 'foreign')])).rejects.toThrow(SeedFileError);
    await expect(merge([join(work, 'empty-nothing')])).rejects.toThrow(/no such directory/);

    const usage = spawnSync(process.execPath, [bin, 'run', 'e6', '--seeds', '0-2'], { cwd: root, encoding: 'utf8' });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/adjoint-ode-accuracy is not run per seed/);
  });
});
