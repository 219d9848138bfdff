/** @file Dispatch-overhead bench: amortised µs per small kernel when batched, submit+wait cost, readback latency. */
import { axpyKernel, fillKernel, linearDispatch } from '@metagrad/kernels-wgsl';
import { full, type Device } from '@metagrad/tensor';
import { median } from '@metagrad/experiments';

export interface DispatchRow {
  case: string;
  elements: number;
  dispatches: number;
  usPerOp: number;
}

export interface DispatchBench {
  adapter: Device['adapter'];
  rows: DispatchRow[];
}

function axpyUniform(n: number, a: number): Uint32Array {
  const w = new Uint32Array(4);
  w[0] = n;
  new Float32Array(w.buffer)[1] = a;
  return w;
}

export async function benchDispatch(device: Device, opts: { quick: boolean }): Promise<DispatchBench> {
  const reps = opts.quick ? 3 : 5;
  const count = opts.quick ? 300 : 1000;
  const rows: DispatchRow[] = [];
  for (const n of [1024, 16384]) {
    const x = full([n], 1, 'f32', device);
    const y = full([n], 0, 'f32', device);
    const uni = axpyUniform(n, 0.5);
    // Batched: `count` dependent axpys recorded into shared passes, one readback at the end.
    const batched: number[] = [];
    for (let r = 0; r < reps + 1; r++) {
      await device.sync();
      const t0 = performance.now();
      for (let i = 0; i < count; i++) device.dispatch(axpyKernel(), [x.buffer, y.buffer], uni, linearDispatch(n));
      await device.read(y.buffer, 16);
      if (r > 0) batched.push(((performance.now() - t0) * 1000) / count);
    }
    rows.push({ case: 'axpy, batched in one submit', elements: n, dispatches: count, usPerOp: median(batched) });
    // Unbatched: submit and wait after every dispatch (what a naive runtime does).
    const single: number[] = [];
    const few = Math.max(20, count / 10);
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      for (let i = 0; i < few; i++) {
        device.dispatch(axpyKernel(), [x.buffer, y.buffer], uni, linearDispatch(n));
        await device.sync();
      }
      single.push(((performance.now() - t0) * 1000) / few);
    }
    rows.push({ case: 'axpy, submit + wait each', elements: n, dispatches: few, usPerOp: median(single) });
    x.dispose();
    y.dispose();
  }
  // Readback round trip of 16 bytes.
  const t = full([4], 3, 'f32', device);
  const reads: number[] = [];
  for (let r = 0; r < 50; r++) {
    const t0 = performance.now();
    await t.toArray();
    reads.push((performance.now() - t0) * 1000);
  }
  rows.push({ case: 'readback 16 B round trip', elements: 4, dispatches: 0, usPerOp: median(reads.slice(5)) });
  // Fill kernels of two different pipelines interleaved (pipeline switches inside one pass).
  const a = full([1024], 0, 'f32', device);
  await device.sync();
  const mixed: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      if (i % 2) device.dispatch(fillKernel({ dtype: 'f32' }), [a.buffer], new Uint32Array([1024, 0]), linearDispatch(1024));
      else device.dispatch(axpyKernel(), [a.buffer, t.buffer], axpyUniform(4, 1), linearDispatch(4));
    }
    await device.read(a.buffer, 16);
    mixed.push(((performance.now() - t0) * 1000) / count);
  }
  rows.push({ case: 'alternating pipelines, batched', elements: 1024, dispatches: count, usPerOp: median(mixed) });
  a.dispose();
  t.dispose();
  return { adapter: device.adapter, rows };
}

export function formatDispatchTable(r: DispatchBench): string {
  const lines = ['| case | elements | dispatches | µs/op |', '|---|---:|---:|---:|'];
  for (const row of r.rows) lines.push(`| ${row.case} | ${row.elements} | ${row.dispatches} | ${row.usPerOp.toFixed(1)} |`);
  return lines.join('\n');
}
