/**
 * @file Bench registry for `metagrad bench`: runs the named benches and merges them into bench/results/<adapter>.json,
 * each with its own date and commit; --quick runs go to <adapter>.quick.json (git-ignored), never into the full results.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNodeDevice } from '@metagrad/tensor/node';
import { createProgress } from './progress';
import { mergeBenchResults, readPreviousResults, type BenchRecord } from './bench-results';
import { InvalidArgumentError } from '@metagrad/tensor';
import type { Device } from '@metagrad/tensor';
import { benchAutograd, formatAutogradTable } from '../../../bench/autograd';
import { benchCompile, formatCompileTable } from '../../../bench/compile';
import { benchDispatch, formatDispatchTable } from '../../../bench/dispatch';
import { benchKernels, formatKernelsTable } from '../../../bench/kernels';
import { benchMeta, formatMetaTable } from '../../../bench/meta';
import { benchTrain, formatTrainTable } from '../../../bench/train';

export interface BenchOptions {
  quick: boolean;
  json: boolean;
  out: string;
}

interface BenchEntry {
  run(device: Device, opts: { quick: boolean }): Promise<unknown>;
  format(result: unknown): string;
}

export const BENCHES: Record<string, BenchEntry> = {
  dispatch: {
    run: (d, o) => benchDispatch(d, o),
    format: (r) => formatDispatchTable(r as Awaited<ReturnType<typeof benchDispatch>>),
  },
  kernels: {
    run: (d, o) => benchKernels({ ...o, device: d }),
    format: (r) => formatKernelsTable(r as Awaited<ReturnType<typeof benchKernels>>),
  },
  train: {
    run: (d, o) => benchTrain({ ...o, device: d }),
    format: (r) => formatTrainTable(r as Awaited<ReturnType<typeof benchTrain>>),
  },
  autograd: {
    run: (d, o) => benchAutograd(d, o),
    format: (r) => formatAutogradTable(r as Awaited<ReturnType<typeof benchAutograd>>),
  },
  meta: { run: (d, o) => benchMeta(d, o), format: (r) => formatMetaTable(r as Awaited<ReturnType<typeof benchMeta>>) },
  compile: {
    run: (d, o) => benchCompile(d, o),
    format: (r) => formatCompileTable(r as Awaited<ReturnType<typeof benchCompile>>),
  },
};

export async function runBenches(which: string, opts: BenchOptions): Promise<void> {
  // Own keys only: 'toString' in BENCHES is true, and BENCHES.toString.run a TypeError after the device started.
  if (which !== 'all' && !Object.hasOwn(BENCHES, which))
    throw new InvalidArgumentError(`unknown bench '${which}' (choose ${Object.keys(BENCHES).join(', ')}, all)`);
  const names = which === 'all' ? Object.keys(BENCHES) : [which];
  const device = await createNodeDevice();
  const results: Record<string, unknown> = {};
  try {
    const progress = createProgress({ total: names.length, label: 'bench', json: opts.json });
    try {
      for (const [done, name] of names.entries()) {
        progress.update(done, { metric: name });
        const result = await BENCHES[name].run(device, { quick: opts.quick });
        results[name] = result;
        if (!opts.json) process.stdout.write(`\n## ${name} (${device.adapter.name})\n\n${BENCHES[name].format(result)}\n`);
      }
      progress.update(names.length, { metric: 'done' });
    } finally {
      progress.stop();
    }
  } finally {
    device.destroy();
  }
  const adapter = device.adapter;
  mkdirSync(opts.out, { recursive: true });
  // Quick numbers (fewer repetitions, smaller sizes) must never replace the full ones: a separate, ignored file.
  const stem = join(opts.out, `${adapter.name}${opts.quick ? '.quick' : ''}`);
  const file = `${stem}.json`;
  const previous = readPreviousResults(file, (m) => process.stderr.write(`${m}\n`));
  const stamp: BenchRecord = { date: new Date().toISOString(), commit: gitCommit(), quick: opts.quick };
  const merged = mergeBenchResults(previous, results, stamp, adapter, Object.keys(BENCHES));
  writeFileSync(file, `${JSON.stringify(merged, null, 2)}\n`);
  writeFileSync(`${stem}.md`, benchMarkdown(merged, adapter.name));
  if (opts.json) process.stdout.write(`${JSON.stringify(names.length === 1 ? results[names[0]] : { adapter, ...results }, null, 2)}\n`);
}

export type { BenchRecord };

function gitCommit(): string | null {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    // The results files themselves change with every run: they do not make the measured source dirty.
    const changed = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', '.', ':(exclude)bench/results'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const dirty = changed.trim() !== '';
    return dirty ? `${head}-dirty` : head;
  } catch {
    return null;
  }
}

/** One markdown file with every bench recorded for the adapter (this run's and earlier ones'), each with its own date and commit. */
function benchMarkdown(all: Record<string, unknown>, adapterName: string): string {
  const recorded = (all.recorded ?? {}) as Record<string, BenchRecord>;
  const parts = [
    `# metagrad benchmarks on ${adapterName}`,
    '',
    'Ratios are TensorFlow.js time / metagrad time, measured in the same process on the same adapter.',
  ];
  for (const [name, entry] of Object.entries(BENCHES)) {
    if (all[name] === undefined) continue;
    const r = recorded[name];
    const when = !r
      ? 'Recorded before per-bench dates; date and commit unknown.'
      : r.dateIsUpperBound
        ? `Recorded on or before ${r.date} (before per-bench dates); commit unknown.`
        : `Recorded ${r.date} at commit ${r.commit ?? 'unknown'}${r.quick ? ' (--quick: fewer repetitions, smaller sizes)' : ''}.`;
    try {
      parts.push('', `## ${name}`, '', when, '', entry.format(all[name]));
    } catch {
      parts.push('', `## ${name}`, '', when, '', `(recorded by an older version; rerun \`pnpm metagrad bench ${name}\`)`);
    }
  }
  return `${parts.join('\n')}\n`;
}
