/**
 * @file The `metagrad` command line: doctor, bench, run <experiment> (seeds, shards, jobs: ./seeds.ts), merge, report. Usage errors exit 2, failures 1.
 * Run through bin.mjs (`pnpm metagrad`), which filters Dawn's native warnings out of stderr.
 */
import './stderr-redirect';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createNodeDevice } from '@metagrad/tensor/node';
import type { Device } from '@metagrad/tensor';
import { doctor, formatDoctor, isSeeded, sectionChoices, selectSections } from '@metagrad/experiments';
import { REPORT_SECTIONS } from '@metagrad/experiments/node';
import { BENCHES, runBenches } from './benches';
import { registerReportCommand, runReport, runSeedUnits, sectionContext, type ReportResults } from './report';
import { mergeSeedFiles, runSeedJobs } from './merge';
import { parseSeedList, parseShard, seedsForRun } from './seeds';
import { registerQueueCommands } from './queue/commands';

/** Acquires the device for one command and always destroys it, so the process can exit. */
async function withDevice<T>(fn: (device: Device) => Promise<T>): Promise<T> {
  const device = await createNodeDevice();
  try {
    return await fn(device);
  } finally {
    device.destroy();
  }
}

/** Swallows output (the `run --json` summary goes to stdout as JSON only). */
const devNull = new Writable({ write: (_c, _e, cb) => cb() });

function print(json: boolean, value: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

/** The CLI's version (apps/cli/package.json, released with the packages; one level up from src/ and dist/). */
export const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Where `bench --quick` writes without `--out`: a git-ignored scratch directory, never the committed bench/results. */
export const QUICK_BENCH_OUT = 'runs/bench-quick';

const program = new Command()
  .name('metagrad')
  .description('WebGPU autodiff and gradient-based meta-learning: diagnostics, benchmarks, experiments')
  .version(VERSION, '-V, --version', 'print the version')
  .showHelpAfterError()
  .exitOverride();

program
  .command('doctor')
  .description('show the WebGPU adapter, its limits, and run a self-test kernel')
  .option('--json', 'print one JSON object')
  .action(async (opts: { json?: boolean }) => {
    const report = await withDevice(doctor);
    print(Boolean(opts.json), report, () => formatDoctor(report));
    if (!report.selftest.ok) process.exitCode = 1;
  });

program
  .command('bench')
  .description(`run benchmarks: ${Object.keys(BENCHES).join(', ')} or all`)
  .argument('<which>', 'which bench', (v: string) => {
    if (v !== 'all' && !Object.hasOwn(BENCHES, v)) throw new InvalidArgumentError(`unknown bench '${v}' (choose ${Object.keys(BENCHES).join(', ')}, all)`);
    return v;
  })
  .option('--quick', `smaller sizes and fewer repetitions (results go to ${QUICK_BENCH_OUT} unless --out)`)
  .option('--json', 'print JSON')
  .addOption(new Option('--out <dir>', `directory for results files (default: bench/results for full runs, ${QUICK_BENCH_OUT} for --quick)`))
  .action(async (which: string, opts: { quick?: boolean; json?: boolean; out?: string }) => {
    const out = opts.out ?? (opts.quick ? QUICK_BENCH_OUT : 'bench/results');
    await runBenches(which, { quick: Boolean(opts.quick), json: Boolean(opts.json), out });
  });

registerReportCommand(program);

const experiments = REPORT_SECTIONS.filter((s) => s.id !== 'selftest');

/** A usage error found after parsing (a flag that does not fit the experiment): its message, exit status 2. */
class UsageError extends Error {
  override name = 'UsageError';
}

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got '${v}'`);
    return n;
  };
}

/** Checks a flag's value with `parse` at parse time (a usage error, exit 2) and keeps the text. */
function checked(parse: (v: string) => unknown) {
  return (v: string): string => {
    try {
      parse(v);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
    return v;
  };
}

interface RunFlags {
  quick?: boolean;
  json?: boolean;
  out?: string;
  seeds?: string;
  shard?: string;
  jobs?: number;
  extras?: boolean;
  merge?: boolean;
}

// Flags, per-seed file layout and merge rules: the comment at the top of ./seeds.ts.
program
  .command('run')
  .description(`run one experiment (the full variant unless --quick): ${sectionChoices(experiments)}`)
  .argument('<experiment>', 'experiment name or number (e1 … e8)', (v: string) => {
    try {
      const [section] = selectSections(experiments, [v]);
      if (section) return section.id;
    } catch {
      /* listed below */
    }
    throw new InvalidArgumentError(`unknown experiment '${v}' (choose ${sectionChoices(experiments)})`);
  })
  .option('--quick', 'the quick variant (about a minute on llvmpipe)')
  .option('--json', 'print the results as JSON')
  .option('--out <dir>', 'output directory for report.md, results.json, figures and seeds/ (default runs/<experiment>)')
  .option('--seeds <list>', 'seeded experiments: the seeds to run, e.g. 0-9, 0,2,5 or 0-3,8 (default: its own)', checked(parseSeedList))
  .option('--shard <i/N>', 'seeded experiments: only the i-th of N round-robin shards of the seeds (1 ≤ i ≤ N)', checked(parseShard))
  .option('--jobs <n>', 'seeded experiments: run the seeds in n local child processes, then summarise', positiveInt('--jobs'))
  .option('--extras', "also run the experiment's non-seeded parts (default: only without --seeds and --shard)")
  .option('--no-extras', "never run the experiment's non-seeded parts")
  .option('--no-merge', 'write the per-seed files only (no summary, results.json or figures)')
  .action(async (name: string, opts: RunFlags) => {
    const section = experiments.find((s) => s.id === name)!;
    const out = opts.out ?? `runs/${name}`;
    const stdout = opts.json ? devNull : process.stdout;
    const seededFlags = opts.seeds !== undefined || opts.shard !== undefined || opts.jobs !== undefined || opts.merge === false;
    if (!isSeeded(section)) {
      if (seededFlags)
        throw new UsageError(
          `${name} is not run per seed (no --seeds, --shard, --jobs or --no-merge); seeded: ${experiments
            .filter(isSeeded)
            .map((s) => s.id)
            .join(', ')}`,
        );
      const results = await runReport({ quick: Boolean(opts.quick), json: false, out, only: [name], stdout });
      return finishRun(results, opts);
    }
    const quick = Boolean(opts.quick);
    const seeds = seedsForRun(section, { quick, seeds: opts.seeds, shard: opts.shard });
    const extras = opts.extras ?? (opts.seeds === undefined && opts.shard === undefined);
    if (seeds.length === 0) throw new UsageError(`no seeds in this shard (${opts.shard} of ${opts.seeds ?? 'the default seeds'})`);
    if (opts.jobs !== undefined) {
      const t0 = performance.now();
      const files = await runSeedJobs({ experiment: name, seeds, jobs: opts.jobs, quick, extras, out });
      if (opts.merge === false) return;
      process.stderr.write(
        `${name}: ${seeds.length} seed(s) in ${Math.min(opts.jobs, seeds.length)} job(s) took ${((performance.now() - t0) / 1000).toFixed(1)} s; summarising\n`,
      );
      const results = await mergeSeedFiles({ inputs: files, out, json: false, stdout, copy: false, label: [out] });
      return finishRun(results, opts);
    }
    if (opts.merge === false) {
      await withDevice(async (device) => {
        const log = (m: string) => process.stderr.write(`${m}\n`);
        await runSeedUnits(section, sectionContext(section, { quick, json: Boolean(opts.json) }, device, process.stderr, log), { seeds, extras, out, quick });
      });
      return;
    }
    const results = await runReport({ quick, json: false, out, only: [name], stdout, seeds, extras });
    finishRun(results, opts);
  });

/** `run`'s ending: the section's JSON on stdout with --json, exit status 1 if it failed. */
function finishRun(results: ReportResults, opts: RunFlags): void {
  const section = results.sections[0];
  if (opts.json) process.stdout.write(`${JSON.stringify(section.status === 'ok' ? section.json : { error: section.error }, null, 2)}\n`);
  if (section.status === 'error') process.exitCode = 1;
}

program
  .command('merge')
  .description('recompute summaries, intervals and figures from per-seed files (of `run --seeds/--shard/--jobs`, or of several machines)')
  .argument('<dirs...>', 'directories holding seeds/<experiment>/seed-<n>.json files (searched recursively)')
  .requiredOption('--out <dir>', 'output directory for report.md, results.json, figures and the merged seeds/')
  .option('--json', 'print results.json on stdout instead of the summary table')
  .action(async (dirs: string[], opts: { out: string; json?: boolean }) => {
    const results = await mergeSeedFiles({ inputs: dirs, out: opts.out, json: Boolean(opts.json) });
    if (results.sections.some((s) => s.status === 'error')) process.exitCode = 1;
  });

// `metagrad worker --redis <url>` and `run … --redis <url>` (seeds as shards on a BullMQ queue): ./queue/commands.ts
registerQueueCommands(program);

/** Exit status of a commander error: 0 for --help and --version, 2 (usage error) for everything else it raises. */
export function commanderExitCode(code: string): number {
  return code === 'commander.helpDisplayed' || code === 'commander.version' ? 0 : 2;
}

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string; name?: string };
    if (e instanceof UsageError) {
      process.stderr.write(`metagrad: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    if (err.code?.startsWith('commander.')) {
      process.exitCode = commanderExitCode(err.code);
      return;
    }
    process.stderr.write(`metagrad: ${err.name ?? 'Error'}: ${err.message ?? String(e)}\n`);
    process.exitCode = 1;
  }
}

await main();
