/**
 * @file `metagrad worker --redis <url>`: takes shards off the queue one at a time and runs each as a child process
 * (`metagrad run <experiment> --seeds <list> [--quick] --no-merge --out <tmpdir>`), so a crash or a lost GPU device never takes
 * the worker down and no GPU state outlives a shard. The shard's per-seed JSON files are the job's return value.
 *
 * Heartbeat: BullMQ's job lock, renewed by this process every lockDuration/2 while the child runs (the child does
 * the work, so this event loop stays free to renew it). A worker that dies (SIGKILL, lost machine) stops renewing;
 * once the lock expires, the stalled checker of any other worker moves the job back to the wait list and another
 * worker runs the shard from the start. SIGTERM: the child is stopped, the shard goes back to the wait list at once
 * (no attempt spent, no lock to wait out) and the worker exits 0; a second SIGTERM exits at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import { codeVersion } from '../seeds';
import { checkRedis, redactUrl, redisOptions } from './redis';
import { cliRoot, DEFAULT_QUEUE, JOB_SCHEMA, parseShardJob, type ShardFile, type ShardJob, type ShardResult } from './schema';

/** Lock and stalled-check settings: production defaults, overridable (tests use a 2 s lock). */
export const WORKER_DEFAULTS = {
  /** A dead worker's shard is retried after at most lockDurationMs + 2 × stalledIntervalMs. */
  lockDurationMs: 30_000,
  stalledIntervalMs: 15_000,
  /** A shard may lose two workers and still be run; a third loss fails it (a shard that kills every worker). */
  maxStalledCount: 2,
} as const;

export interface QueueWorkerOptions {
  redis: string;
  queue?: string;
  /**
   * Command prefix of the shard's run: `[program, ...args]`, to which `run <experiment> --seeds … --out …` is
   * appended. Default: this node and the CLI's bin.mjs. METAGRAD_WORKER_RUN_COMMAND (a JSON array) overrides it.
   */
  runCommand?: string[];
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  maxStalledCount?: number;
  /** Run jobs of another code version too (default: fail them without retrying, naming both versions). */
  anyVersion?: boolean;
  /** Exit after this many shards (completed or failed); default: run until SIGTERM. */
  maxJobs?: number;
  /** Where the shards' temporary output directories go (default: the OS temp dir). */
  workDir?: string;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /** Forward the child's stdout/stderr lines to log (default true). */
  childOutput?: boolean;
}

export interface QueueWorkerHandle {
  /** `hostname:pid`, stored on each job it processes. */
  name: string;
  /** Stops the running shard (back to the wait list), closes the queue connection; resolves when done. */
  shutdown(): Promise<void>;
  /** Resolves when the worker has closed (after shutdown, or after maxJobs shards). */
  closed: Promise<void>;
}

/** The default shard command prefix: this node running the CLI's bin.mjs. */
export function defaultRunCommand(): string[] {
  const env = process.env.METAGRAD_WORKER_RUN_COMMAND;
  if (env) {
    const parsed = JSON.parse(env) as unknown;
    if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((a) => typeof a === 'string'))
      throw new Error('METAGRAD_WORKER_RUN_COMMAND must be a JSON array of strings, e.g. ["node","run.mjs"]');
    return parsed as string[];
  }
  return [process.execPath, join(cliRoot(), 'bin.mjs')];
}

/**
 * The argv a shard runs: `<prefix> run <experiment> --seeds a,b,c [--quick] --no-merge [--extras] --out <dir>`
 * (per-seed files only: the coordinator merges).
 */
export function shardArgs(job: ShardJob, out: string): string[] {
  return [
    'run',
    job.experiment,
    '--seeds',
    job.seeds.join(','),
    ...(job.variant === 'quick' ? ['--quick'] : []),
    '--no-merge',
    ...(job.extras ? ['--extras'] : []),
    '--out',
    out,
  ];
}

/** Every file under `<dir>/seeds/`, relative to dir with '/' separators. */
export function collectSeedFiles(dir: string): ShardFile[] {
  const root = join(dir, 'seeds');
  const files: ShardFile[] = [];
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else files.push({ path: relative(dir, p).split(sep).join('/'), content: readFileSync(p, 'utf8') });
    }
  };
  try {
    walk(root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return files;
}

/** Keeps the last `max` characters of a stream, for error messages. */
class Tail {
  private text = '';
  constructor(private readonly max = 4000) {}
  push(s: string): void {
    this.text = (this.text + s).slice(-this.max);
  }
  toString(): string {
    return this.text.trim();
  }
}

/** Starts a worker: checks Redis first (a clear error naming the URL), then takes shards until shutdown. */
export async function startQueueWorker(opts: QueueWorkerOptions): Promise<QueueWorkerHandle> {
  await checkRedis(opts.redis);
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const name = `${hostname()}:${process.pid}`;
  const queueName = opts.queue ?? DEFAULT_QUEUE;
  const runCommand = opts.runCommand ?? defaultRunCommand();
  const mine = codeVersion();
  const lockDuration = opts.lockDurationMs ?? WORKER_DEFAULTS.lockDurationMs;
  let shuttingDown = false;
  let current: { child: ChildProcess; jobId: string } | undefined;
  let done = 0;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));

  const runShard = async (job: Job, token?: string): Promise<ShardResult> => {
    let data: ShardJob;
    try {
      data = parseShardJob(job.data);
    } catch (e) {
      throw new UnrecoverableError((e as Error).message);
    }
    if (data.cancelled) throw new UnrecoverableError(`job ${job.id}: its coordinator gave up on run ${data.runId}; not run again`);
    if (data.codeVersion !== mine && !opts.anyVersion) {
      throw new UnrecoverableError(
        `worker ${name} runs code ${mine}, the job was made by code ${data.codeVersion} (update the worker, or start it with --any-version)`,
      );
    }
    const label = `shard ${data.shard.index + 1}/${data.shard.count} of ${data.experiment} (seeds ${data.seeds.join(',')}, job ${job.id}, attempt ${job.attemptsStarted})`;
    const out = mkdtempSync(join(opts.workDir ?? tmpdir(), 'metagrad-shard-'));
    const started = Date.now();
    log(`worker ${name}: ${label} started`);
    await job.updateProgress({ worker: name, startedAt: started }).catch(() => {});
    const [program, ...prefix] = runCommand;
    const child = spawn(program, [...prefix, ...shardArgs(data, out)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, METAGRAD_SHARD_JOB: String(job.id) },
    });
    current = { child, jobId: String(job.id) };
    const tail = new Tail();
    const forward = (chunk: Buffer): void => {
      const s = chunk.toString('utf8');
      tail.push(s);
      if (opts.childOutput !== false) for (const line of s.split('\n')) if (line.trim()) log(`  [${job.id}] ${line}`);
    };
    child.stdout!.on('data', forward);
    child.stderr!.on('data', forward);
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    if (data.timeoutMs) {
      timer = setTimeout(() => {
        timedOut = true;
        stopChild(child);
      }, data.timeoutMs);
    }
    try {
      const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code, signal) => resolve({ code, signal }));
      }).catch((e: Error) => {
        throw new UnrecoverableError(`worker ${name} cannot start the shard command '${program}': ${e.message}`);
      });
      if (shuttingDown) {
        // Back to the wait list now, without spending an attempt: another worker takes it at once.
        await job.moveToWait(token);
        log(`worker ${name}: ${label} stopped by shutdown, back in the queue`);
        throw new WaitingError();
      }
      const wallMs = Date.now() - started;
      if (timedOut) throw new Error(`${label} ran past its ${data.timeoutMs} ms timeout on ${name}; killed`);
      if (exit.code !== 0) {
        const how = exit.signal ? `was killed by ${exit.signal}` : `exited with status ${exit.code}`;
        const msg = `${label}: the run ${how} on ${name}${tail.toString() ? `:\n${tail}` : ''}`;
        // Status 2 is a usage error (unknown experiment, bad flag): the same on every worker, so not retried.
        throw exit.code === 2 ? new UnrecoverableError(msg) : new Error(msg);
      }
      const files = collectSeedFiles(out);
      const missing = data.seeds.filter((s) => !files.some((f) => f.path.endsWith(`/seed-${s}.json`)));
      if (files.length === 0 || missing.length > 0) {
        throw new Error(
          `${label}: the run succeeded but wrote no seeds/…/seed-<n>.json for seed(s) ${(missing.length ? missing : data.seeds).join(',')} under ${out}`,
        );
      }
      log(`worker ${name}: ${label} done in ${(wallMs / 1000).toFixed(1)} s (${files.length} files)`);
      return { schema: JOB_SCHEMA, files, worker: name, wallMs, codeVersion: mine };
    } finally {
      clearTimeout(timer);
      current = undefined;
      rmSync(out, { recursive: true, force: true });
    }
  };

  const worker = new Worker(queueName, runShard, {
    connection: { ...redisOptions(opts.redis), maxRetriesPerRequest: null },
    name,
    concurrency: 1,
    lockDuration,
    stalledInterval: opts.stalledIntervalMs ?? WORKER_DEFAULTS.stalledIntervalMs,
    maxStalledCount: opts.maxStalledCount ?? WORKER_DEFAULTS.maxStalledCount,
    // Poll at most every 2 s when idle, so shutdown is quick.
    drainDelay: 2,
  });
  let lastError = '';
  worker.on('error', (e) => {
    // Connection trouble repeats every retry: log each distinct message once.
    if (e.message !== lastError) log(`worker ${name}: ${e.message}`);
    lastError = e.message;
  });
  worker.on('failed', (job, err) => {
    if (err?.name === 'WaitingError') return;
    log(`worker ${name}: job ${job?.id} failed: ${err?.message.split('\n')[0]}`);
  });
  const countJob = (): void => {
    done++;
    if (opts.maxJobs !== undefined && done >= opts.maxJobs) void shutdown();
  };
  worker.on('completed', countJob);
  worker.on('failed', (_job, err) => {
    if (err?.name !== 'WaitingError') countJob();
  });
  await worker.waitUntilReady();
  log(`worker ${name}: waiting for shards on queue '${queueName}' at ${redactUrl(opts.redis)} (code ${mine}, lock ${lockDuration} ms)`);

  let shutdownPromise: Promise<void> | undefined;
  const shutdown = (): Promise<void> => {
    if (shutdownPromise) return shutdownPromise;
    shuttingDown = true;
    shutdownPromise = (async () => {
      if (current) {
        log(`worker ${name}: shutting down, stopping job ${current.jobId}`);
        stopChild(current.child);
      }
      await worker.close();
      log(`worker ${name}: closed`);
      resolveClosed();
    })();
    return shutdownPromise;
  };
  return { name, shutdown, closed };
}

/** SIGTERM, then SIGKILL after 10 s if the child is still there. */
function stopChild(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const t = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }, 10_000);
  t.unref();
  child.once('close', () => clearTimeout(t));
}
