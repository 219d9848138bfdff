/** @file `metagrad doctor`: which adapter we got, its key limits, and a self-test kernel checked against the CPU. */
import { axpyKernel, linearDispatch } from '@metagrad/kernels-wgsl';
import { tensor, type Device } from '@metagrad/tensor';

export interface DoctorReport {
  adapter: Device['adapter'];
  limits: Record<string, number>;
  features: string[];
  selftest: { ok: boolean; ms: number; elements: number; maxAbsError: number };
}

/** Runs y = a·x + y on the GPU over `n` elements and compares with the CPU result. */
export async function selfTest(device: Device, n = 1 << 20): Promise<DoctorReport['selftest']> {
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = Math.sin(i);
    y[i] = (i % 97) / 97;
  }
  const a = 1.5;
  const gx = tensor(x, [n], 'f32', device);
  const gy = tensor(y, [n], 'f32', device);
  await device.sync();
  const t0 = performance.now();
  device.dispatch(axpyKernel(), [gx.buffer, gy.buffer], packAxpy(n, a), linearDispatch(n));
  const out = (await gy.toArray()) as Float32Array;
  const ms = performance.now() - t0;
  let maxAbsError = 0;
  for (let i = 0; i < n; i++) maxAbsError = Math.max(maxAbsError, Math.abs(out[i] - Math.fround(Math.fround(a * x[i]) + y[i])));
  gx.dispose();
  gy.dispose();
  return { ok: maxAbsError <= 1e-6, ms, elements: n, maxAbsError };
}

function packAxpy(n: number, a: number): Uint32Array {
  const words = new Uint32Array(4);
  words[0] = n;
  new Float32Array(words.buffer)[1] = a;
  return words;
}

export async function doctor(device: Device): Promise<DoctorReport> {
  return {
    adapter: device.adapter,
    limits: device.limits,
    features: device.features,
    selftest: await selfTest(device),
  };
}

export function formatDoctor(r: DoctorReport): string {
  const a = r.adapter;
  const lines = [
    `adapter       ${a.name} (backend ${a.backend}, feature level ${a.featureLevel}${a.isFallbackAdapter ? ', fallback' : ''})`,
    `vendor        ${a.vendor || '-'}   architecture ${a.architecture || '-'}`,
    `device        ${a.device || '-'}`,
    `description   ${a.description || '-'}`,
    `features      ${r.features.join(', ') || '-'}`,
    'limits',
    ...Object.entries(r.limits).map(([k, v]) => `  ${k.padEnd(36)} ${v}`),
    `self-test     axpy over ${r.selftest.elements} floats: ${r.selftest.ok ? 'OK' : 'FAILED'} in ${r.selftest.ms.toFixed(2)} ms (max |error| ${r.selftest.maxAbsError.toExponential(2)})`,
  ];
  return lines.join('\n');
}
