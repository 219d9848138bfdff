/** @file The `metagrad` command line: doctor, bench, run <experiment>, report. */
import { Writable } from 'node:stream';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createNodeDevice } from '@metagrad/tensor/node';
import type { Device } from '@metagrad/tensor';
import { doctor, formatDoctor } from './doctor';
import { BENCHES, runBenches } from './benches';
import { registerReportCommand, runReport } from './report';
import { REPORT_SECTIONS } from './report-sections';

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

const program = new Command()
  .name('metagrad')
  .description('WebGPU autodiff and gradient-based meta-learning: diagnostics, benchmarks, experiments')
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
  .option('--quick', 'smaller sizes and fewer repetitions')
  .option('--json', 'print JSON')
  .addOption(new Option('--out <dir>', 'directory for results files').default('bench/results'))
  .action(async (which: string, opts: { quick?: boolean; json?: boolean; out: string }) => {
    await runBenches(which, { quick: Boolean(opts.quick), json: Boolean(opts.json), out: opts.out });
  });

registerReportCommand(program);

const experimentIds = REPORT_SECTIONS.filter((s) => s.id !== 'selftest').map((s) => s.id);
program
  .command('run')
  .description(`run one experiment: ${experimentIds.join(', ')}`)
  .argument('<experiment>', 'experiment name', (v: string) => {
    if (!experimentIds.includes(v)) throw new InvalidArgumentError(`unknown experiment '${v}' (choose ${experimentIds.join(', ')})`);
    return v;
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

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    const err = e as { code?: string; exitCode?: number; message?: string; name?: string };
    if (err.code?.startsWith('commander.')) {
      process.exitCode = err.exitCode ?? 2;
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') process.exitCode = 0;
      return;
    }
    process.stderr.write(`metagrad: ${err.name ?? 'Error'}: ${err.message ?? String(e)}\n`);
    process.exitCode = 1;
  }
}

await main();
