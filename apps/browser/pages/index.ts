/**
 * @file Landing page: shows the adapter the browser gave (or why there is none), checks one kernel on it, and checks
 * a compiled training step (grad + in-place SGD, replayed as one submit) against the same step run eagerly.
 */
import { dispose, tensor, tidy, type Tensor } from '@metagrad/tensor';
import { add } from '@metagrad/tensor/raw';
import { compile, detach, grad, matmul, mean, requiresGrad, square, sub, tanh } from '@metagrad/autograd';
import { SGD } from '@metagrad/models';
import { demoStatus, finishRun, setState, startDevice } from './common';

/** Six SGD steps of mean((tanh(x·w) − y)²) eagerly and through compile: the largest |Δw| between the two runs. */
async function compiledStepCheck(): Promise<{ maxDiff: number; replays: number; dispatchesPerReplay: number }> {
  const init = [0.1, -0.2, 0.3, 0.05, 0.4, -0.1];
  const we = requiresGrad(tensor(init, [3, 2]));
  const wc = requiresGrad(tensor(init, [3, 2]));
  const oe = new SGD({ w: we }, { lr: 0.1, momentum: 0.9 });
  const oc = new SGD({ w: wc }, { lr: 0.1, momentum: 0.9 });
  const stepOf = (w: Tensor, opt: SGD) => (x: Tensor, y: Tensor) => {
    const loss = mean(square(sub(tanh(matmul(x, w)), y)));
    const [g] = grad(loss, [w]);
    opt.step({ w: g });
    return detach(loss);
  };
  const eager = stepOf(we, oe);
  const compiled = compile(stepOf(wc, oc));
  for (let i = 0; i < 6; i++) {
    const x = tensor([0.5, -1 + 0.1 * i, 0.25, 0.3, 2, -0.5], [2, 3]);
    const y = tensor([0.1, -0.3, 0.2, 0.05], [2, 2]);
    dispose([tidy(() => eager(x, y)), await compiled(x, y), x, y]);
  }
  const [a, b] = [await we.toArray(), await wc.toArray()];
  const maxDiff = Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));
  const { replays, dispatchesPerReplay } = compiled.stats();
  compiled.dispose();
  dispose([we, wc]);
  return { maxDiff, replays, dispatchesPerReplay };
}

demoStatus('index');
const device = await startDevice();
if (device) {
  setState('running', 'running a self-test kernel…');
  (document.getElementById('adapter-section') as HTMLElement).hidden = false;
  const table = document.getElementById('adapter-table') as HTMLTableElement;
  const rows: [string, string][] = [
    ...Object.entries(device.adapter).map(([k, v]): [string, string] => [k, String(v)]),
    ...['maxComputeInvocationsPerWorkgroup', 'maxStorageBuffersPerShaderStage', 'maxStorageBufferBindingSize', 'maxBufferSize'].map((k): [string, string] => [
      k,
      String(device.limits[k]),
    ]),
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
  const step = await compiledStepCheck();
  const compileOk = step.maxDiff <= 1e-5 && step.replays === 3;
  const ok = wrong === 0 && compileOk;
  const text = ok
    ? `self-test passed: a ${n}-element add on this adapter matched the CPU (${ms.toFixed(1)} ms incl. compile and readback); ` +
      `a compiled SGD step replayed ${step.replays}× (${step.dispatchesPerReplay} dispatches per submit) as the eager step`
    : `self-test FAILED: ${wrong} of ${n} elements differ from the CPU; compiled step max |Δw| ${step.maxDiff} after ${step.replays} replays`;
  if (ok) finishRun({ selftestOk: true, elements: n, ms, compileOk, compile: step }, text);
  else setState('error', text);
}
