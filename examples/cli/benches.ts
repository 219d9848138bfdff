/** @file Bench registry for `metagrad bench`: runs the named benches and writes bench/results/<adapter>.json. */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createNodeDevice } from '@metagrad/tensor/node';
import { createProgress } from './progress';
import type { Device } from '@metagrad/tensor';
import { benchAutograd, formatAutogradTable } from '../../bench/autograd';
import { benchDispatch, formatDispatchTable } from '../../bench/dispatch';
import { benchKernels, formatKernelsTable } from '../../bench/kernels';
import { benchMeta, formatMetaTable } from '../../bench/meta';
import { benchTrain, formatTrainTable } from '../../bench/train';

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
  dispatch: { run: (d, o) => benchDispatch(d, o), format: (r) => formatDispatchTable(r as Awaited<ReturnType<typeof benchDispatch>>) },
  kernels: { run: (d, o) => benchKernels({ ...o, device: d }), format: (r) => formatKernelsTable(r as Awaited<ReturnType<typeof benchKernels>>) },
  train: { run: (d, o) => benchTrain({ ...o, device: d }), format: (r) => formatTrainTable(r as Awaited<ReturnType<typeof benchTrain>>) },
  autograd: { run: (d, o) => benchAutograd(d, o), format: (r) => formatAutogradTable(r as Awaited<ReturnType<typeof benchAutograd>>) },
  meta: { run: (d, o) => benchMeta(d, o), format: (r) => formatMetaTable(r as Awaited<ReturnType<typeof benchMeta>>) },
};

export async function runBenches(which: string, opts: BenchOptions): Promise<void> {
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
  const file = join(opts.out, `${adapter.name}.json`);
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  const merged: Record<string, unknown> = { ...previous, adapter, date: new Date().toISOString(), ...results };
  writeFileSync(file, JSON.stringify(merged, null, 2) + '\n');
  writeFileSync(join(opts.out, `${adapter.name}.md`), benchMarkdown(merged, adapter.name));
  if (opts.json) process.stdout.write(JSON.stringify(names.length === 1 ? results[names[0]] : { adapter, ...results }, null, 2) + '\n');
}

/** One markdown file with every bench recorded for the adapter (this run's and earlier ones'), each with its date. */
function benchMarkdown(all: Record<string, unknown>, adapterName: string): string {
  const parts = [`# metagrad benchmarks on ${adapterName}`, '', `Updated ${String(all.date)}. Ratios are TensorFlow.js time / metagrad time, measured in the same process on the same adapter.`];
  for (const [name, entry] of Object.entries(BENCHES)) {
    if (all[name] === undefined) continue;
    try {
      parts.push('', `## ${name}`, '', entry.format(all[name]));
    } catch {
      parts.push('', `## ${name}`, '', '(recorded by an older version; rerun `pnpm metagrad bench ' + name + '`)');
    }
  }
  return parts.join('\n') + '\n';
}
