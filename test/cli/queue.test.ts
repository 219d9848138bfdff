/**
 * @file Seeds as shards on a BullMQ queue (apps/cli/src/queue): a real `redis-server` started here on a free
 * 127.0.0.1 port (no persistence, temp dir, killed at the end) and real processes. The integration test runs E1
 * --quick on two `metagrad worker`s, SIGKILLs one mid-shard (with its shard's processes, like a lost machine): the
 * shard is retried by the other worker, every other shard runs once, and the merged results equal a local
 * `metagrad run`. The mechanics tests use the queue's standalone entry and a stand-in for the shard's `metagrad run`
 * (a node script writing per-seed files, told to hang on a seed the first time): SIGTERM puts the running shard back
 * without spending an attempt; a failing shard is retried --attempts times; an unreachable Redis is one clear error
 * naming the URL.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSafeRelativePath, parseShardJob, splitSeeds, JOB_SCHEMA } from '../../apps/cli/src/queue/schema';
import { checkRedis, redactUrl, RedisUnreachableError, redisOptions } from '../../apps/cli/src/queue/redis';
import { describeWithPrerequisite } from '../helpers/prerequisite';

const ENTRY = resolve('apps/cli/src/queue/standalone.ts');
const BIN = resolve('apps/cli/bin.mjs');
const hasRedis = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;

/** The shard command's stand-in: `run <exp> --seeds a,b [--quick] --out dir` writes seeds/<exp>/seed-<n>.json. */
const FAKE_RUN = `
import { mkdirSync, writeFileSync, existsSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
const argv = process.argv.slice(2);
const opt = (n) => { const i = argv.indexOf(n); return i >= 0 ? argv[i + 1] : undefined; };
if (argv[0] !== 'run') { console.error('usage: run <exp> --seeds … --out …'); process.exit(2); }
const exp = argv[1];
const seeds = opt('--seeds').split(',').map(Number);
const out = opt('--out');
const quick = argv.includes('--quick');
const hang = (process.env.FAKE_HANG_SEEDS ?? '').split(',').filter(Boolean).map(Number);
const state = process.env.FAKE_STATE_DIR;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
for (const s of seeds) {
  if (state) appendFileSync(join(state, 'starts.log'), s + ' ' + process.ppid + '\\n');
  if (state && hang.includes(s) && !existsSync(join(state, 'hang-' + s))) {
    writeFileSync(join(state, 'hang-' + s), JSON.stringify({ worker: process.ppid, pid: process.pid }));
    await sleep(1e9);
  }
  await sleep(Number(process.env.FAKE_DELAY_MS ?? 200));
  mkdirSync(join(out, 'seeds', exp), { recursive: true });
  const result = { experiment: exp, seed: s, quick, finalLoss: Math.sin(s + 1) / (s + 2) };
  writeFileSync(join(out, 'seeds', exp, 'seed-' + s + '.json'), JSON.stringify(result, null, 2) + '\\n');
}
console.log('fake run: seeds ' + seeds.join(',') + ' done');
`;

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => res(port));
    });
  });
}

interface Proc {
  proc: ChildProcess;
  /** stdout and stderr interleaved. */
  output: () => string;
  stdout: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts the queue's standalone entry (or, with `cli`, the real `metagrad` bin) in its own process group, so a test
 * can SIGKILL a worker together with its shard's processes, like a lost machine.
 */
function start(args: string[], env: Record<string, string>, cli = false): Proc {
  const proc = spawn(process.execPath, cli ? [BIN, ...args] : ['--import', 'tsx', ENTRY, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  let stdout = '';
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    stdout += d.toString();
  });
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => proc.on('close', (code, signal) => res({ code, signal })));
  return { proc, output: () => out, stdout: () => stdout, exited };
}

async function until(what: string, cond: () => boolean, timeoutMs = 30_000, detail: () => string = () => ''): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}${detail() ? `:\n${detail()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function killGroup(p: Proc | undefined): void {
  if (p?.proc.pid && p.proc.exitCode === null && p.proc.signalCode === null) {
    try {
      process.kill(-p.proc.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

function filesUnder(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string, rel: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name), `${rel + e.name}/`);
      else out.set(rel + e.name, readFileSync(join(d, e.name), 'utf8'));
    }
  };
  if (existsSync(dir)) walk(dir, '');
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describeWithPrerequisite(
  'queue: shards on a BullMQ queue with a real redis-server',
  hasRedis,
  "redis-server is not installed (bash scripts/setup.sh --test installs Debian's redis-server)",
  () => {
    let dir: string;
    let redis: ChildProcess;
    let url: string;
    let fake: string;
    const procs: Proc[] = [];
    /** Environment of workers: the stand-in shard command, one code version, fast lock expiry. */
    const workerEnv = (state: string, hang: string): Record<string, string> => ({
      METAGRAD_WORKER_RUN_COMMAND: JSON.stringify([process.execPath, fake]),
      METAGRAD_CODE_VERSION: 'queue-test',
      FAKE_STATE_DIR: state,
      FAKE_HANG_SEEDS: hang,
    });
    const coordEnv = { METAGRAD_CODE_VERSION: 'queue-test' };
    const lockArgs = ['--lock-duration', '2000', '--stalled-interval', '1000'];

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'metagrad-queue-'));
      fake = join(dir, 'fake-run.mjs');
      writeFileSync(fake, FAKE_RUN);
      const port = await freePort();
      url = `redis://127.0.0.1:${port}`;
      redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let log = '';
      redis.stdout!.on('data', (d: Buffer) => (log += d.toString()));
      await until('redis-server to accept connections', () => /Ready to accept connections/.test(log) || redis.exitCode !== null, 10_000);
      if (redis.exitCode !== null) throw new Error(`redis-server exited: ${log}`);
    });

    afterAll(() => {
      for (const p of procs) killGroup(p);
      redis?.kill('SIGKILL');
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('a real quick experiment (E1, 3 seeds) on two `metagrad worker`s, one SIGKILLed mid-shard: the merged results equal the local run', async () => {
      const t0 = Date.now();
      const env = { METAGRAD_CODE_VERSION: 'queue-test' };
      const seedsArg = ['--seeds', '0-2'];
      // The local run, alongside (same seeds, one process).
      const localOut = join(dir, 'e1-local');
      const local = start(['run', 'e1', '--quick', ...seedsArg, '--out', localOut, '--json'], env, true);
      procs.push(local);
      const queue = ['--queue', 'real-test'];
      const a = start(['worker', '--redis', url, ...queue, ...lockArgs], env, true);
      const b = start(['worker', '--redis', url, ...queue, ...lockArgs], env, true);
      procs.push(a, b);
      const out = join(dir, 'e1-queue');
      await until(
        'both workers to be ready',
        () => /waiting for shards/.test(a.output()) && /waiting for shards/.test(b.output()),
        90_000,
        () => a.output() + b.output(),
      );
      const coord = start(['run', 'e1', '--quick', ...seedsArg, '--redis', url, ...queue, '--out', out, '--json', '--timeout', '170'], env, true);
      procs.push(coord);

      // Kill the first worker to start a shard, 1 s into it (its shard's process is starting: mid-shard).
      let victim: Proc | undefined;
      await until(
        'a worker to start a shard',
        () => (victim = [a, b].find((w) => /\) started/.test(w.output()))) !== undefined,
        90_000,
        () => coord.output(),
      );
      const [, shardNo] = /shard (\d+)\/3 of evograd-toy \(seeds \d+, job \S+, attempt 1\) started/.exec(victim!.output()) ?? [];
      expect(shardNo, victim!.output()).toBeDefined();
      await new Promise((r) => setTimeout(r, 1000));
      expect(victim!.output()).not.toMatch(new RegExp(`shard ${shardNo}/3 .* done`));
      process.kill(-victim!.proc.pid!, 'SIGKILL');
      const survivor = victim === a ? b : a;

      const done = await coord.exited;
      expect(done.code, coord.output()).toBe(0);
      expect(coord.output()).toMatch(new RegExp(`shard ${shardNo}/3 \\(seeds \\d+\\) started again \\(start 2, its previous worker was lost\\)`));
      // Every other shard ran once: one 'started' line each, all on the survivor after the kill.
      const startedLines = [...(victim!.output() + survivor.output()).matchAll(/shard (\d)\/3 of evograd-toy .*attempt (\d)\) started/g)].map(
        (m) => `${m[1]}:${m[2]}`,
      );
      expect(startedLines.sort()).toEqual(['1:1', '2:1', '3:1', `${shardNo}:2`].sort());
      expect(coord.output()).not.toMatch(/MaxListenersExceededWarning/);
      const merged = JSON.parse(coord.stdout()) as unknown;

      const localDone = await local.exited;
      expect(localDone.code, local.output()).toBe(0);
      const want = JSON.parse(local.stdout()) as unknown;
      expect(merged).toEqual(want);
      // And seed by seed: the same per-seed results (dates and timings aside), the same report files.
      const seedJson = (root: string) => [...filesUnder(join(root, 'seeds')).entries()].map(([p, c]) => [p, (JSON.parse(c) as { json: unknown }).json]);
      expect(seedJson(out)).toEqual(seedJson(localOut));
      expect(seedJson(out).map(([p]) => p)).toEqual(['evograd-toy/seed-0.json', 'evograd-toy/seed-1.json', 'evograd-toy/seed-2.json']);
      for (const f of ['results.json', 'report.md']) expect(existsSync(join(out, f)), f).toBe(true);
      survivor.proc.kill('SIGTERM');
      expect((await survivor.exited).code).toBe(0);
      console.log(`queue real-experiment test: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }, 200_000); // ~20-30 s alone; 61 s inside the full suite on a loaded 2-core machine

    // Separate queues and state directories: these run side by side (they mostly wait for processes to start).
    describe.concurrent('mechanics, with a stand-in shard command', () => {
      it('SIGTERM mid-shard: the worker stops its shard, puts it back in the queue (no attempt spent) and exits 0; another worker finishes it; --run-id re-attaches without running it again', async ({
        expect,
      }) => {
        const state = mkdtempSync(join(dir, 'state-'));
        const out = join(dir, 'out-term');
        const queue = ['--queue', 'term-test'];
        const first = start(['worker', '--redis', url, ...queue], workerEnv(state, '7'));
        procs.push(first);
        await until('the worker to be ready', () => /waiting for shards/.test(first.output()));
        const coord = start(['run', 'fake', '--seeds', '7', '--redis', url, ...queue, '--out', out, '--json', '--attempts', '1', '--timeout', '50'], coordEnv);
        procs.push(coord);
        const marker = join(state, 'hang-7');
        await until('the worker to start seed 7', () => existsSync(marker));
        const { pid: shardPid } = JSON.parse(readFileSync(marker, 'utf8')) as { pid: number };
        const t = Date.now();
        first.proc.kill('SIGTERM');
        const exit = await first.exited;
        expect(exit.code, first.output()).toBe(0);
        expect(Date.now() - t).toBeLessThan(10_000);
        expect(first.output()).toMatch(/stopped by shutdown, back in the queue/);
        expect(alive(shardPid)).toBe(false);

        // Default lock settings (30 s): the shard is taken at once because it is waiting, not stalled.
        const second = start(['worker', '--redis', url, ...queue], workerEnv(state, '7'));
        procs.push(second);
        const done = await coord.exited;
        expect(done.code, coord.output()).toBe(0);
        const summary = JSON.parse(coord.output().slice(coord.output().indexOf('{'), coord.output().lastIndexOf('}') + 1)) as {
          shards: { worker: string; starts: number }[];
        };
        expect(summary.shards[0].worker).toMatch(new RegExp(`:${second.proc.pid}$`));
        // One abort listener per poll, removed again (11 polls warned 'Possible EventTarget memory leak').
        expect(coord.output()).not.toMatch(/MaxListenersExceededWarning/);
        expect(filesUnder(out).get('seeds/fake/seed-7.json')).toMatch(/"seed": 7/);
        second.proc.kill('SIGTERM');
        expect((await second.exited).code).toBe(0);

        // --run-id re-attaches: with no worker left, the finished shard's files come back from Redis, nothing runs.
        const { runId } = JSON.parse(coord.stdout()) as { runId: string };
        const again = start(
          ['run', 'fake', '--seeds', '7', '--redis', url, ...queue, '--out', join(dir, 'out-again'), '--json', '--run-id', runId, '--timeout', '20'],
          coordEnv,
        );
        procs.push(again);
        expect((await again.exited).code, again.output()).toBe(0);
        expect(filesUnder(join(dir, 'out-again'))).toEqual(filesUnder(out));
        expect(readFileSync(join(state, 'starts.log'), 'utf8').trim().split('\n')).toHaveLength(2);
      }, 60_000);

      it('a run that gives up (--timeout) marks its running shard cancelled: after its worker dies, the other worker does not run it again', async ({
        expect,
      }) => {
        const state = mkdtempSync(join(dir, 'state-'));
        const queue = ['--queue', 'cancel-test'];
        const a = start(['worker', '--redis', url, ...queue, ...lockArgs], workerEnv(state, '5'));
        const b = start(['worker', '--redis', url, ...queue, ...lockArgs], workerEnv(state, '5'));
        procs.push(a, b);
        await until('both workers to be ready', () => /waiting for shards/.test(a.output()) && /waiting for shards/.test(b.output()));
        const coord = start(['run', 'fake', '--seeds', '5', '--redis', url, ...queue, '--out', join(dir, 'out-cancel'), '--timeout', '3'], coordEnv);
        procs.push(coord);
        const done = await coord.exited;
        expect(done.code).toBe(1);
        expect(coord.output()).toMatch(/timed out after \d+ s; 1 of 1 shard\(s\) lost \(seeds 5\)/);
        const marker = join(state, 'hang-5');
        expect(existsSync(marker)).toBe(true);
        const { worker: hungWorker } = JSON.parse(readFileSync(marker, 'utf8')) as { worker: number };
        const [victim, other] = hungWorker === a.proc.pid ? [a, b] : [b, a];
        process.kill(-victim.proc.pid!, 'SIGKILL');
        await until(
          'the other worker to skip the cancelled shard',
          () => /gave up on run/.test(other.output()),
          20_000,
          () => other.output(),
        );
        expect(readFileSync(join(state, 'starts.log'), 'utf8').trim().split('\n')).toHaveLength(1);
        other.proc.kill('SIGTERM');
        expect((await other.exited).code).toBe(0);
      }, 60_000);

      it('a failing shard is retried --attempts times, then the run fails naming the shard, its seeds and the error', async ({ expect }) => {
        const out = join(dir, 'out-fail');
        const queue = ['--queue', 'fail-test'];
        const w = start(['worker', '--redis', url, ...queue], {
          ...workerEnv(dir, ''),
          METAGRAD_WORKER_RUN_COMMAND: JSON.stringify([process.execPath, '-e', 'console.error("boom: device lost"); process.exit(3)']),
        });
        procs.push(w);
        const coord = start(['run', 'fake', '--seeds', '4', '--redis', url, ...queue, '--out', out, '--attempts', '2', '--timeout', '50'], coordEnv);
        procs.push(coord);
        const done = await coord.exited;
        expect(done.code).toBe(1);
        expect(coord.output()).toMatch(/1 of 1 shard\(s\) lost \(seeds 4\)/);
        expect(coord.output()).toMatch(/exited with status 3[\s\S]*boom: device lost/);
        expect(coord.output()).toMatch(/FAILED after 2 start\(s\)/);
        w.proc.kill('SIGTERM');
        expect((await w.exited).code).toBe(0);
      }, 60_000);
    });
  },
);

describe('queue: errors and the job schema', () => {
  it('an unreachable Redis is one clear error naming the URL, for the worker and for run --redis; usage errors exit 2', async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    const t = Date.now();
    const usage = start(['run', 'e1', '--redis', url], {});
    const procs = [start(['worker', '--redis', url], {}), start(['run', 'e1', '--seeds', '0-3', '--redis', url], {})];
    expect((await usage.exited).code).toBe(2);
    expect(usage.output()).toMatch(/--redis needs --seeds/);
    for (const p of procs) {
      const exit = await p.exited;
      expect(exit.code, p.output()).toBe(1);
      expect(p.output()).toMatch(new RegExp(`RedisUnreachableError: cannot reach Redis at redis://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
    }
    expect(Date.now() - t).toBeLessThan(30_000);
    // The password never shows.
    const err = await checkRedis(`redis://user:s3cret@127.0.0.1:${port}`).catch((e: Error) => e);
    expect(err).toBeInstanceOf(RedisUnreachableError);
    expect((err as Error).message).toMatch(/redis:\/\/user:\*\*\*@127\.0\.0\.1/);
    expect((err as Error).message).not.toMatch(/s3cret/);
  }, 60_000);

  it('shards, URLs and job checks', () => {
    expect(splitSeeds([0, 1, 2, 3, 4], 2)).toEqual([[0, 1], [2, 3], [4]]);
    expect(redisOptions('redis://u:p%40ss@h:6380/2')).toEqual({
      host: 'h',
      port: 6380,
      username: 'u',
      password: 'p@ss',
      db: 2,
    });
    expect(redisOptions('rediss://h').tls).toEqual({});
    expect(() => redisOptions('http://h')).toThrow(/redis:\/\/ or rediss:\/\//);
    expect(redactUrl('redis://u:secret@h:1')).toBe('redis://u:***@h:1');
    const job = {
      schema: JOB_SCHEMA,
      runId: 'r1',
      experiment: 'e1',
      variant: 'quick',
      seeds: [1],
      shard: { index: 0, count: 1 },
      codeVersion: 'v',
    };
    expect(parseShardJob(job)).toEqual(job);
    expect(() => parseShardJob({ ...job, schema: 99 })).toThrow(/schema 99/);
    expect(() => parseShardJob({ ...job, experiment: 'a:b' })).toThrow(/experiment/);
    expect(() => parseShardJob({ ...job, seeds: [] })).toThrow(/seeds/);
    expect(isSafeRelativePath('seeds/e1/seed-1.json')).toBe(true);
    for (const bad of ['../x', '/etc/passwd', 'a/../../b', 'a\\b', '']) expect(isSafeRelativePath(bad), bad).toBe(false);
  });
});
