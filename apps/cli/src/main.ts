/**
 * @file The `metagrad` command line: doctor, bench, run <experiment>, report. Usage errors exit 2, failures 1.
 * Run through bin.mjs (`pnpm metagrad`), which filters Dawn's native warnings out of stderr.
 */
import './stderr-redirect';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createNodeDevice } from '@metagrad/tensor/node';
import type { Device } from '@metagrad/tensor';
import { doctor, formatDoctor, sectionChoices, selectSections } from '@metagrad/experiments';
import { REPORT_SECTIONS } from '@metagrad/experiments/node';
import { BENCHES, runBenches } from './benches';
import { registerReportCommand, runReport } from './report';

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
  process.stdout.write(json ? JSON.stringify(value, null, 2) + '\n' : text() + '\n');
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
  .option('--out <dir>', 'output directory for report.md, results.json and figures (default runs/<experiment>)')
  .action(async (name: string, opts: { quick?: boolean; json?: boolean; out?: string }) => {
    const results = await runReport({ quick: Boolean(opts.quick), json: false, out: opts.out ?? `runs/${name}`, only: [name], stdout: opts.json ? devNull : process.stdout });
    const section = results.sections[0];
    if (opts.json) process.stdout.write(JSON.stringify(section.status === 'ok' ? section.json : { error: section.error }, null, 2) + '\n');
    if (section.status === 'error') process.exitCode = 1;
  });

/** Exit status of a commander error: 0 for --help and --version, 2 (usage error) for everything else it raises. */
export function commanderExitCode(code: string): number {
  return code === 'commander.helpDisplayed' || code === 'commander.version' ? 0 : 2;
}

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string; name?: string };
    if (err.code?.startsWith('commander.')) {
      process.exitCode = commanderExitCode(err.code);
      return;
    }
    process.stderr.write(`metagrad: ${err.name ?? 'Error'}: ${err.message ?? String(e)}\n`);
    process.exitCode = 1;
  }
}

await main();
