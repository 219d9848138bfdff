/**
 * @file `metagrad run <exp> --seeds … --redis <url>`: splits the seeds into shards, enqueues one job per shard, and
 * writes each shard's per-seed JSON files under `--out` the moment its job completes (so a coordinator that stops
 * keeps what arrived, and `metagrad merge` can combine it with later runs), then merges them into the summary.
 *
 * Retries are the workers' business (see worker.ts): a job whose worker died goes back to the wait list by BullMQ's
 * stalled check and another worker runs it; a shard whose run exits non-zero is retried `attempts` times in all. The
 * coordinator only watches: it polls its jobs' states, reports starts, retries and completions, and fails with the
 * list of lost shards when a job fails for good or the overall timeout passes (its unstarted jobs are removed then).
 * Re-running with the same `--run-id` re-attaches to the same jobs: finished shards are not run again.
 */
import { mkdirSync, renameSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Queue, type Job } from 'bullmq';
import { codeVersion } from '../seeds';
import { checkRedis, redactUrl, redisOptions } from './redis';
import { DEFAULT_QUEUE, jobId, JOB_SCHEMA, parseShardResult, splitSeeds, type ShardJob, type ShardResult } from './schema';

export interface DistributedRunOptions {
  redis: string;
  queue?: string;
  experiment: string;
  seeds: number[];
  quick: boolean;
  /** Run the experiment's non-seeded units too (`--extras`), with the first shard. */
  extras?: boolean;
  /** Output directory: shard files land at `<out>/<path>` (e.g. `<out>/seeds/e1/seed-3.json`). */
  out: string;
  /** Seeds per job (default 1: the finest retry and load balancing; each job pays one process start). */
  seedsPerShard?: number;
  /** Runs per shard when its command fails (exit status ≠ 0); default 3. Lost workers are counted apart (maxStalledCount). */
  attempts?: number;
  /** The whole run fails after this long (default: no limit). */
  timeoutMs?: number;
  /** Each shard's run is killed after this long on its worker (then retried); default: no limit. */
  shardTimeoutMs?: number;
  /** Re-attach to an earlier run's jobs (default: a fresh random id). */
  runId?: string;
  pollMs?: number;
  /** Stops waiting (e.g. on SIGINT): unstarted jobs are removed, the run rejects. */
  signal?: AbortSignal;
  log?: (line: string) => void;
  /**
   * Recomputes the summary from the per-seed files written so far (absolute paths; the CLI passes `metagrad merge`'s
   * code). Called when a shard arrives (at most every `mergeEveryMs`, never two at once, failures only logged) with
   * `final` false, and once at the end with `final` true; what that last call returns is the summary's `merged`.
   */
  merge?: (files: string[], final: boolean) => Promise<unknown>;
  mergeEveryMs?: number;
}

export interface ShardOutcome {
  index: number;
  seeds: number[];
  jobId: string;
  worker: string;
  wallMs: number;
  /** How many times the shard's run was started (> 1: retried after a failure or a lost worker). */
  starts: number;
  files: string[];
}

export interface DistributedRunSummary {
  runId: string;
  queue: string;
  shards: ShardOutcome[];
  /** Every file written under out, relative paths. */
  files: string[];
  wallMs: number;
  /** What the final merge returned (the CLI: the experiment's results JSON). */
  merged?: unknown;
}

/** Thrown when shards are lost for good (failed after their retries, or the timeout passed). */
export class ShardsLostError extends Error {
  override name = 'ShardsLostError';
  constructor(
    message: string,
    readonly summary: Partial<DistributedRunSummary> & { failed: { index: number; seeds: number[]; reason: string }[] },
  ) {
    super(message);
  }
}

/** Writes a file atomically (temp file, rename): a reader never sees half a seed file. */
function writeAtomic(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}

/** Enqueues the shards, collects their files as they complete, merges; see the file comment. */
export async function runDistributed(opts: DistributedRunOptions): Promise<DistributedRunSummary> {
  const started = Date.now();
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (opts.seeds.length === 0) throw new Error('no seeds to run');
  const redisVersion = await checkRedis(opts.redis);
  const queueName = opts.queue ?? DEFAULT_QUEUE;
  const runId = opts.runId ?? `${new Date().toISOString().slice(0, 10).replace(/-/g, '')}-${randomBytes(4).toString('hex')}`;
  const groups = splitSeeds(opts.seeds, opts.seedsPerShard ?? 1);
  const version = codeVersion();
  const jobs: ShardJob[] = groups.map((seeds, index) => ({
    schema: JOB_SCHEMA,
    runId,
    experiment: opts.experiment,
    variant: opts.quick ? 'quick' : 'full',
    seeds,
    ...(opts.extras && index === 0 ? { extras: true } : {}),
    shard: { index, count: groups.length },
    codeVersion: version,
    ...(opts.shardTimeoutMs ? { timeoutMs: opts.shardTimeoutMs } : {}),
  }));
  const ids = jobs.map((j) => jobId(runId, j.experiment, j.shard.index));

  const queue = new Queue(queueName, { connection: { ...redisOptions(opts.redis), maxRetriesPerRequest: 3 } });
  queue.on('error', () => {
    /* surfaced by the next poll's rejection */
  });
  const pending = new Map(ids.map((id, i) => [id, i]));
  const outcomes: ShardOutcome[] = [];
  const failed: { index: number; seeds: number[]; reason: string }[] = [];
  const written = new Set<string>();
  const seen = new Map<string, { starts: number; stalls: number; worker?: string }>();
  let merging: Promise<unknown> | undefined;
  let lastMerge = 0;
  const mergeNow = async (final: boolean): Promise<unknown> => {
    if (!opts.merge) return undefined;
    if (merging) await merging.catch(() => {});
    const files = [...written].sort().map((p) => resolve(opts.out, p));
    const run = opts.merge(files, final).finally(() => {
      merging = undefined;
      lastMerge = Date.now();
    });
    merging = run;
    if (final) return await run;
    run.catch((e: Error) => log(`coordinator: summary of the ${outcomes.length} shard(s) so far failed: ${e.message}`));
    return undefined;
  };

  try {
    await queue.addBulk(
      jobs.map((data, i) => ({
        name: opts.experiment,
        data,
        opts: {
          jobId: ids[i],
          attempts: opts.attempts ?? 3,
          backoff: { type: 'exponential', delay: 2000 },
          // Kept a day after completion so a coordinator re-attaching with --run-id still finds the results.
          removeOnComplete: { age: 24 * 3600 },
          removeOnFail: { age: 7 * 24 * 3600 },
        },
      })),
    );
    log(
      `coordinator: run ${runId}: ${jobs.length} shard(s) of ${opts.experiment}${opts.quick ? ' --quick' : ''} (seeds ${opts.seeds.join(',')}) on queue '${queueName}' at ${redactUrl(opts.redis)} (Redis ${redisVersion}, code ${version})`,
    );

    const deadline = opts.timeoutMs ? started + opts.timeoutMs : Infinity;
    const pollMs = opts.pollMs ?? 500;
    while (pending.size > 0) {
      if (opts.signal?.aborted) throw new Error('interrupted');
      if (Date.now() > deadline) throw new Error(`timed out after ${((Date.now() - started) / 1000).toFixed(0)} s`);
      for (const [id, index] of [...pending]) {
        // State first, then the job: a job read before its state could be one that completed in between, without
        // its return value (completion sets both at once in Redis).
        const state = await queue.getJobState(id);
        const job = (await queue.getJob(id)) as Job | undefined;
        const seeds = jobs[index].seeds;
        if (!job || state === 'unknown') {
          pending.delete(id);
          failed.push({ index, seeds, reason: `job ${id} is gone from the queue (removed by someone else?)` });
          continue;
        }
        const prev = seen.get(id) ?? { starts: 0, stalls: 0 };
        const progress = job.progress as { worker?: string } | undefined;
        const worker = job.processedBy ?? progress?.worker;
        if (job.attemptsStarted > prev.starts && state === 'active') {
          const again =
            prev.starts > 0
              ? ` again (start ${job.attemptsStarted}${job.stalledCounter > prev.stalls ? ', its previous worker was lost' : job.attemptsMade > 0 ? `, after: ${job.failedReason?.split('\n')[0]}` : ''})`
              : '';
          log(`coordinator: shard ${index + 1}/${jobs.length} (seeds ${seeds.join(',')}) started${again} on ${worker ?? 'a worker'}`);
          seen.set(id, { starts: job.attemptsStarted, stalls: job.stalledCounter, worker });
        }
        if (state === 'completed') {
          const result: ShardResult = parseShardResult(job.returnvalue);
          const files: string[] = [];
          for (const f of result.files) {
            if (written.has(f.path))
              throw new Error(`shard ${index + 1} returned ${f.path}, which another shard of this run already wrote (overlapping seeds?)`);
            written.add(f.path);
            writeAtomic(join(opts.out, f.path), f.content);
            files.push(f.path);
          }
          const missing = seeds.filter((s) => !files.some((p) => p.endsWith(`/seed-${s}.json`)));
          if (missing.length) throw new Error(`shard ${index + 1} completed without seed file(s) for seed(s) ${missing.join(',')}`);
          pending.delete(id);
          outcomes.push({
            index,
            seeds,
            jobId: id,
            worker: result.worker,
            wallMs: result.wallMs,
            starts: job.attemptsStarted,
            files,
          });
          const retried = job.attemptsStarted > 1 ? `, ${job.attemptsStarted} starts` : '';
          log(
            `coordinator: shard ${index + 1}/${jobs.length} (seeds ${seeds.join(',')}) done by ${result.worker} in ${(result.wallMs / 1000).toFixed(1)} s${retried} — ${outcomes.length}/${jobs.length} shards, ${((Date.now() - started) / 1000).toFixed(0)} s`,
          );
          if (opts.merge && !merging && pending.size > 0 && Date.now() - lastMerge >= (opts.mergeEveryMs ?? 10_000)) void mergeNow(false);
        } else if (state === 'failed') {
          pending.delete(id);
          failed.push({ index, seeds, reason: job.failedReason ?? 'failed' });
          log(
            `coordinator: shard ${index + 1}/${jobs.length} (seeds ${seeds.join(',')}) FAILED after ${job.attemptsStarted} start(s): ${(job.failedReason ?? '').split('\n')[0]}`,
          );
        }
      }
      if (pending.size > 0) await sleep(pollMs, opts.signal);
    }
    if (failed.length > 0) throw new Error(`${failed.length} shard(s) failed`);
    log(
      `coordinator: run ${runId}: all ${jobs.length} shard(s) in ${((Date.now() - started) / 1000).toFixed(1)} s; files under ${opts.out}${opts.merge ? ', summarising' : ''}`,
    );
  } catch (e) {
    // Unstarted jobs of this run are removed. Active ones are locked by their workers: they are marked cancelled, so
    // that one whose worker died is not run again when the stalled check puts it back (a live one finishes, unread).
    let removed = 0;
    for (const id of pending.keys()) {
      const job = (await queue.getJob(id).catch(() => undefined)) as Job | undefined;
      if (!job) continue;
      if ((await job.getState().catch(() => 'unknown')) !== 'active')
        removed += await job.remove().then(
          () => 1,
          () => 0,
        );
      else await job.updateData({ ...(job.data as ShardJob), cancelled: true }).catch(() => {});
    }
    const lost = [...failed, ...[...pending.values()].map((index) => ({ index, seeds: jobs[index].seeds, reason: 'not finished' }))];
    const lostSeeds = lost.flatMap((l) => l.seeds).sort((a, b) => a - b);
    const detail = failed.map((f) => `\n  shard ${f.index + 1} (seeds ${f.seeds.join(',')}): ${f.reason.split('\n').slice(0, 6).join('\n    ')}`).join('');
    const kept = written.size
      ? ` The ${outcomes.length} finished shard(s) are under ${opts.out}; run the missing seeds (--seeds ${lostSeeds.join(',')}) and combine with metagrad merge.`
      : '';
    const unstarted = removed ? ` ${removed} unstarted job(s) removed from the queue.` : '';
    throw new ShardsLostError(
      `distributed run ${runId} of ${opts.experiment}: ${(e as Error).message}; ${lost.length} of ${jobs.length} shard(s) lost (seeds ${lostSeeds.join(',')}).${unstarted}${kept}${detail}`,
      {
        runId,
        queue: queueName,
        shards: outcomes,
        files: [...written].sort(),
        failed: lost,
      },
    );
  } finally {
    await queue.close();
  }
  let merged: unknown;
  try {
    merged = await mergeNow(true);
  } catch (e) {
    throw new Error(
      `distributed run ${runId} of ${opts.experiment}: all ${jobs.length} shard(s) arrived (files under ${opts.out}), but the summary failed: ${(e as Error).message}`,
    );
  }
  outcomes.sort((a, b) => a.index - b.index);
  return {
    runId,
    queue: queueName,
    shards: outcomes,
    files: [...written].sort(),
    wallMs: Date.now() - started,
    ...(opts.merge ? { merged } : {}),
  };
}

/** Waits `ms`, or less if the signal aborts (its listener removed either way: one poll each, for hours). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(t);
      resolve();
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Reads back the files a run wrote (for tests and checks): path → content. */
export function readFiles(out: string, paths: string[]): Map<string, string> {
  return new Map(paths.filter((p) => existsSync(join(out, p))).map((p) => [p, readFileSync(join(out, p), 'utf8')]));
}
