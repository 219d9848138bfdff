/**
 * @file The queue's CLI: `metagrad worker --redis <url>` and the `--redis <url>` form of `metagrad run`, added to a
 * commander program by one call after the program's own `run` command exists. With `--redis`, `run` enqueues its
 * seeds as shards instead of running them here; without it, `run` is untouched. This module loads no experiments:
 * the summary is a hook (./commands.ts passes `metagrad merge`'s code; the standalone entry none).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { parseSeedList } from '../seeds';
import { runDistributed } from './coordinator';
import { DEFAULT_QUEUE } from './schema';
import { startQueueWorker, WORKER_DEFAULTS } from './worker';

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got '${v}'`);
    return n;
  };
}

function positiveSeconds(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number of seconds, got '${v}'`);
    return n;
  };
}

/** Options that `run` gains from the queue (all ignored unless --redis is given). */
interface DistributedRunFlags {
  redis?: string;
  queue: string;
  seeds?: string | number[];
  quick?: boolean;
  extras?: boolean;
  json?: boolean;
  out?: string;
  merge?: boolean;
  seedsPerJob: number;
  attempts: number;
  timeout?: number;
  shardTimeout?: number;
  runId?: string;
  jobs?: unknown;
  shard?: unknown;
}

/**
 * Recomputes the summary from per-seed files (absolute paths) into `out`, as `metagrad merge` does; `final` false for
 * the summaries while shards still arrive (quiet). Returns what `run --json` prints.
 */
export type MergeFn = (files: string[], out: string, final: boolean, json: boolean) => Promise<unknown>;

/**
 * Adds `worker` to the program and `--redis` (with its companions) to its `run` command. Call it once, after `run`
 * is defined. `merge` summarises the collected per-seed files (absent: they are only collected).
 */
export function registerQueueCommandsWith(program: Command, hooks: { merge?: MergeFn } = {}): void {
  const merge = hooks.merge;
  program
    .command('worker')
    .description('take experiment shards from a Redis queue and run them, one at a time, until SIGTERM (see docs/SCALE-OUT.md)')
    .requiredOption('--redis <url>', 'Redis URL, e.g. redis://queue-host:6379 (rediss:// for TLS; user:password@ allowed)')
    .option('--queue <name>', 'queue name', DEFAULT_QUEUE)
    .option(
      '--lock-duration <ms>',
      "lease of a running shard, renewed every half of it; a dead worker's shard is retried once it expires",
      positiveInt('--lock-duration'),
      WORKER_DEFAULTS.lockDurationMs,
    )
    .option(
      '--stalled-interval <ms>',
      'how often this worker looks for shards whose worker died',
      positiveInt('--stalled-interval'),
      WORKER_DEFAULTS.stalledIntervalMs,
    )
    .option('--max-stalled <n>', 'a shard whose workers die more than this many times fails', positiveInt('--max-stalled'), WORKER_DEFAULTS.maxStalledCount)
    .option('--max-jobs <n>', 'exit after this many shards (default: until SIGTERM)', positiveInt('--max-jobs'))
    .option('--any-version', 'also run shards enqueued by another code version (default: fail them, naming both)')
    .option('--work-dir <dir>', "parent of the shards' temporary output directories (default: the OS temp dir)")
    .action(
      async (opts: {
        redis: string;
        queue: string;
        lockDuration: number;
        stalledInterval: number;
        maxStalled: number;
        maxJobs?: number;
        anyVersion?: boolean;
        workDir?: string;
      }) => {
        const handle = await startQueueWorker({
          redis: opts.redis,
          queue: opts.queue,
          lockDurationMs: opts.lockDuration,
          stalledIntervalMs: opts.stalledInterval,
          maxStalledCount: opts.maxStalled,
          maxJobs: opts.maxJobs,
          anyVersion: Boolean(opts.anyVersion),
          workDir: opts.workDir,
        });
        let signals = 0;
        const onSignal = (signal: NodeJS.Signals): void => {
          if (++signals > 1) {
            process.stderr.write(`worker ${handle.name}: second ${signal}, exiting now\n`);
            process.exit(1);
          }
          void handle.shutdown();
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
        await handle.closed;
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      },
    );

  const run = program.commands.find((c) => c.name() === 'run');
  if (!run) throw new Error("registerQueueCommands: the program has no 'run' command to add --redis to");
  const has = (flag: string): boolean => run.options.some((o) => o.long === flag);
  // The local run owns --seeds (and --quick, --out, --json); added here only where it does not exist.
  if (!has('--seeds')) run.option('--seeds <list>', 'seeds to run, e.g. 0-9, 0,2,5 or 0-3,8');
  run
    .addOption(new Option('--redis <url>', 'enqueue the seeds as shards on this Redis (run by `metagrad worker`s) and merge the results here'))
    .addOption(new Option('--queue <name>', 'with --redis: queue name').default(DEFAULT_QUEUE))
    .addOption(new Option('--seeds-per-job <n>', 'with --redis: seeds per shard').argParser(positiveInt('--seeds-per-job')).default(1))
    .addOption(
      new Option('--attempts <n>', 'with --redis: runs per shard when its run fails (a lost worker is retried apart)')
        .argParser(positiveInt('--attempts'))
        .default(3),
    )
    .addOption(new Option('--timeout <s>', 'with --redis: give up after this many seconds').argParser(positiveSeconds('--timeout')))
    .addOption(
      new Option('--shard-timeout <s>', "with --redis: kill and retry a shard's run after this many seconds").argParser(positiveSeconds('--shard-timeout')),
    )
    .addOption(new Option('--run-id <id>', 'with --redis: re-attach to an earlier run (finished shards are not run again)'))
    .hook('preAction', (cmd) => {
      const opts = cmd.opts<DistributedRunFlags>();
      if (!opts.redis) return;
      if (opts.jobs !== undefined || opts.shard !== undefined)
        cmd.error('error: --redis cannot be combined with --jobs or --shard (the workers are the jobs)', {
          exitCode: 2,
        });
      if (opts.seeds === undefined) cmd.error('error: --redis needs --seeds (e.g. --seeds 0-9)', { exitCode: 2 });
      if (opts.runId !== undefined && !/^[A-Za-z0-9._-]+$/.test(opts.runId))
        cmd.error(`error: --run-id may hold only letters, digits, '.', '_' and '-', got '${opts.runId}'`, {
          exitCode: 2,
        });
      // Replaces the local action for this invocation only (commander calls the handler set when the hook returns).
      cmd.action(async (experiment: string) => {
        let seeds: number[];
        try {
          seeds = Array.isArray(opts.seeds) ? opts.seeds : parseSeedList(String(opts.seeds));
        } catch (e) {
          return cmd.error(`error: ${(e as Error).message}`, { exitCode: 2 });
        }
        const out = opts.out ?? `runs/${experiment}`;
        const controller = new AbortController();
        const onSigint = (): void => controller.abort();
        process.once('SIGINT', onSigint);
        process.once('SIGTERM', onSigint);
        try {
          const summary = await runDistributed({
            redis: opts.redis!,
            queue: opts.queue,
            experiment,
            seeds,
            quick: Boolean(opts.quick),
            extras: opts.extras === true,
            out,
            seedsPerShard: opts.seedsPerJob,
            attempts: opts.attempts,
            timeoutMs: opts.timeout !== undefined ? opts.timeout * 1000 : undefined,
            shardTimeoutMs: opts.shardTimeout !== undefined ? opts.shardTimeout * 1000 : undefined,
            runId: opts.runId,
            signal: controller.signal,
            merge: merge && opts.merge !== false ? (files, final) => merge(files, out, final, Boolean(opts.json)) : undefined,
          });
          // --json: the merged results (like a local run's), else the run's own summary (workers, starts, files).
          if (opts.json) process.stdout.write(`${JSON.stringify(summary.merged ?? summary, null, 2)}\n`);
        } finally {
          process.off('SIGINT', onSigint);
          process.off('SIGTERM', onSigint);
        }
      });
    });
}

/** The long flags `worker` has and those `run` gains (for docs checks): registered on a stand-in program. */
export function queueCommandFlags(): { worker: string[]; run: string[] } {
  const program = new Command();
  program.command('run').argument('<experiment>').option('--quick').option('--json').option('--out <dir>');
  registerQueueCommandsWith(program);
  const flags = (name: string): string[] => program.commands.find((c) => c.name() === name)!.options.map((o) => o.long!);
  return { worker: flags('worker'), run: flags('run') };
}
