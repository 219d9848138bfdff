/** @file Leak tests: gradients with and without createGraph, HVP loops and abandoned graphs return memory to baseline. */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createNodeDevice } from '@metagrad/tensor/node';
import * as raw from '@metagrad/tensor';
import type { Device, Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';

let device: Device;
beforeAll(async () => {
  device = await createNodeDevice();
});
afterAll(() => device?.destroy());

const ITERATIONS = 100;

function params(): Tensor[] {
  return [ag.requiresGrad(raw.normal([4, 8], 1, { std: 0.5 })), ag.requiresGrad(raw.zeros([8])), ag.requiresGrad(raw.normal([8, 3], 2, { std: 0.5 }))];
}

/** A small MLP with a softmax cross-entropy loss: every common op family in one graph. */
function loss([w1, b1, w2]: Tensor[], x: Tensor, labels: Tensor): Tensor {
  return raw.tidy(() => ag.crossEntropy(ag.matmul(ag.tanh(ag.add(ag.matmul(x, w1), b1)), w2), labels));
}

function data(): { x: Tensor; labels: Tensor } {
  return { x: raw.normal([5, 4], 3), labels: raw.tensor([0, 1, 2, 1, 0], [5], 'i32') };
}

describe('leaks', () => {
  it('grad without createGraph: 100 iterations return to baseline', async () => {
    const p = params();
    const { x, labels } = data();
    await ag.expectNoLeaks(async () => {
      for (let i = 0; i < ITERATIONS; i++) {
        const l = loss(p, x, labels);
        const g = ag.grad(l, p);
        raw.dispose([l, g]);
      }
      await device.sync();
    }, device);
    raw.dispose([p, x, labels]);
  });

  it('grad with createGraph (grad of grad, a MAML-style inner step): 100 iterations return to baseline', async () => {
    const p = params();
    const { x, labels } = data();
    await ag.expectNoLeaks(async () => {
      for (let i = 0; i < ITERATIONS; i++) {
        raw.tidy(() => {
          const g = ag.grad(loss(p, x, labels), p, { createGraph: true });
          const fast = p.map((w, k) => ag.sub(w, ag.mulScalar(g[k], 0.1)));
          const meta = ag.grad(loss(fast, x, labels), p);
          return meta.length;
        });
      }
      await device.sync();
    }, device);
    raw.dispose([p, x, labels]);
  });

  it('HVP loops (one-shot hvp and a reused HvpOperator): 100 products return to baseline', async () => {
    const p = params();
    const { x, labels } = data();
    const v = p.map((w, k) => raw.normal(w.shape, 10 + k));
    await ag.expectNoLeaks(async () => {
      for (let i = 0; i < ITERATIONS / 4; i++) raw.dispose(ag.hvp((...q) => loss(q, x, labels), p, v));
      const op = new ag.HvpOperator((...q) => loss(q, x, labels), p);
      for (let i = 0; i < ITERATIONS; i++) raw.dispose(op.apply(v));
      op.dispose();
      await device.sync();
    }, device);
    raw.dispose([p, x, labels, v]);
  });

  it('backward into .grad, then disposing the parameters, frees everything', async () => {
    await ag.expectNoLeaks(() => {
      const p = params();
      const { x, labels } = data();
      for (let i = 0; i < 10; i++) {
        const l = loss(p, x, labels);
        ag.backward(l);
        l.dispose();
      }
      raw.dispose([p, x, labels]);
    }, device);
  });

  it('frees the graph when outputs are disposed without any backward', async () => {
    const p = params();
    const { x, labels } = data();
    const before = ag.memory(device);
    const l = loss(p, x, labels);
    const during = ag.memory(device);
    expect(during.tapeNodes).toBeGreaterThan(before.tapeNodes);
    expect(during.savedBytes).toBeGreaterThan(before.savedBytes);
    l.dispose();
    ag.assertNoLeaks(device, before, 'abandoned forward');
    raw.dispose([p, x, labels]);
  });

  it('conv, pooling and grid sampling graphs with createGraph return to baseline', async () => {
    const x = ag.requiresGrad(raw.normal([1, 2, 6, 6], 4));
    const w = ag.requiresGrad(raw.normal([3, 2, 3, 3], 5));
    const theta = ag.requiresGrad(raw.tensor([0.9, 0.1, 0, -0.1, 0.9, 0], [1, 2, 3]));
    await ag.expectNoLeaks(async () => {
      for (let i = 0; i < 10; i++) {
        raw.tidy(() => {
          const y = ag.maxPool2d(ag.relu(ag.conv2d(x, w, { padding: 1 })), { kernel: 2 });
          const s = ag.gridSample(y, ag.affineGrid(theta, [1, 3, 3, 3]));
          const g = ag.grad(ag.sum(ag.square(s)), [x, w, theta], { createGraph: true });
          return ag.grad(ag.add(ag.add(ag.sum(ag.square(g[0])), ag.sum(ag.square(g[1]))), ag.sum(g[2])), [x, w, theta]).length;
        });
      }
      await device.sync();
    }, device);
    raw.dispose([x, w, theta]);
  });

  it('a failed second backward leaks nothing', async () => {
    const x = ag.requiresGrad(raw.tensor([1, 2, 3]));
    await ag.expectNoLeaks(() => {
      const y = raw.tidy(() => ag.sum(ag.exp(x)));
      ag.grad(y, [x])[0].dispose();
      expect(() => ag.grad(y, [x])).toThrow(ag.GraphFreedError);
      y.dispose();
    }, device);
    x.dispose();
  });
});
