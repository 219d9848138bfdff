/** @file Bench registry for `metagrad bench`: runs the named benches and writes bench/results/<adapter>.json. */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createNodeDevice } from '@metagrad/tensor/node';
import type { Device } from '@metagrad/tensor';
import { benchDispatch, formatDispatchTable } from '../../bench/dispatch';
import { benchKernels, formatKernelsTable } from '../../bench/kernels';

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
};

export async function runBenches(which: string, opts: BenchOptions): Promise<void> {
  const names = which === 'all' ? Object.keys(BENCHES) : [which];
  const device = await createNodeDevice();
  const results: Record<string, unknown> = {};
  try {
    for (const name of names) {
      const result = await BENCHES[name].run(device, { quick: opts.quick });
      results[name] = result;
      if (!opts.json) process.stdout.write(`\n## ${name} (${device.adapter.name})\n\n${BENCHES[name].format(result)}\n`);
    }
  } finally {
    device.destroy();
  }
  const adapter = device.adapter;
  mkdirSync(opts.out, { recursive: true });
  const file = join(opts.out, `${adapter.name}.json`);
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  writeFileSync(file, JSON.stringify({ ...previous, adapter, date: new Date().toISOString(), ...results }, null, 2) + '\n');
  if (opts.json) process.stdout.write(JSON.stringify(names.length === 1 ? results[names[0]] : { adapter, ...results }, null, 2) + '\n');
}
