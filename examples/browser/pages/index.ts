/** @file Landing page: shows the adapter the browser gave (or why there is none) and checks one kernel on it. */
import { add, tensor } from '@metagrad/tensor';
import { demoStatus, finishRun, setState, startDevice } from './common';

demoStatus('index');
const device = await startDevice();
if (device) {
  setState('running', 'running a self-test kernel…');
  (document.getElementById('adapter-section') as HTMLElement).hidden = false;
  const table = document.getElementById('adapter-table') as HTMLTableElement;
  const rows: [string, string][] = [
    ...Object.entries(device.adapter).map(([k, v]): [string, string] => [k, String(v)]),
    ...['maxComputeInvocationsPerWorkgroup', 'maxStorageBuffersPerShaderStage', 'maxStorageBufferBindingSize', 'maxBufferSize'].map(
      (k): [string, string] => [k, String(device.limits[k])],
    ),
    ['features', device.features.join(', ') || '(none)'],
  ];
  for (const [key, value] of rows) {
    const tr = table.insertRow();
    tr.insertCell().textContent = key;
    tr.insertCell().textContent = value;
  }
  const n = 1 << 16;
  const a = tensor(Float32Array.from({ length: n }, (_, i) => i));
  const b = tensor(Float32Array.from({ length: n }, (_, i) => 2 * i));
  const start = performance.now();
  const c = add(a, b);
  const out = await c.toArray();
  const ms = performance.now() - start;
  let wrong = 0;
  for (let i = 0; i < n; i++) if (out[i] !== 3 * i) wrong++;
  a.dispose();
  b.dispose();
  c.dispose();
  const ok = wrong === 0;
  const text = ok
    ? `self-test passed: a ${n}-element add on this adapter matched the CPU (${ms.toFixed(1)} ms incl. compile and readback)`
    : `self-test FAILED: ${wrong} of ${n} elements differ from the CPU`;
  if (ok) finishRun({ selftestOk: true, elements: n, ms }, text);
  else setState('error', text);
}
