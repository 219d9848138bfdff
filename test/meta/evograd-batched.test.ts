/** @file The batched K-copy forwards (MLP, width-scaled CNN, LeNet-5 via grouped convolutions) equal K separate forwards, and E1's host study meets its goals. */
import { describe, expect, it } from 'vitest';
import { tensor, type Device, type Tensor } from '@metagrad/tensor';
import { noGrad } from '@metagrad/autograd';
import { Rng, disposeTree, lenet5, leaves, mapTree, type ParamTree } from '@metagrad/models';
import { batchedLenet, cnnClassifier, mlpClassifier, toyStudy } from '@metagrad/experiments/node';
import { useDevice } from '../helpers/device';

const getDevice = useDevice();

/** The copies' leaves stacked along a new leading axis (host round trip: test-only). */
async function stack<P extends ParamTree>(copies: P[]): Promise<P> {
  const K = copies.length;
  const out: Tensor[] = [];
  const first = leaves(copies[0]);
  for (let j = 0; j < first.length; j++) {
    const chunks = await Promise.all(copies.map((c) => leaves(c)[j].toArray()));
    const data = new Float32Array(K * first[j].size);
    chunks.forEach((ch, k) => data.set(ch as Float32Array, k * first[j].size));
    out.push(tensor(data, [K, ...first[j].shape], 'f32', first[j].device));
  }
  let i = 0;
  return mapTree(copies[0], () => out[i++]);
}

async function compare<P extends ParamTree>(
  apply: (p: P, x: Tensor) => Tensor,
  batched: (p: P, x: Tensor) => Tensor,
  init: (seed: number) => P,
  x: Tensor,
  K: number,
) {
  const copies = Array.from({ length: K }, (_, k) => init(k + 1));
  const stacked = await stack(copies);
  const y = noGrad(() => batched(stacked, x));
  const got = await y.toArray();
  expect(y.shape[0]).toBe(K);
  const per = y.size / K;
  for (let k = 0; k < K; k++) {
    const one = noGrad(() => apply(copies[k], x));
    const want = await one.toArray();
    const scale = Math.max(...Array.from(want, Math.abs));
    for (let i = 0; i < per; i++) expect(Math.abs(got[k * per + i] - want[i])).toBeLessThan(1e-5 * Math.max(1, scale));
    one.dispose();
  }
  disposeTree([y, stacked, ...copies]);
}

const images = (device: Device, n: number, size: number) => tensor(new Rng(5).uniformArray(n * size * size), [n, 1, size, size], 'f32', device);

describe('batched K-copy forwards', () => {
  it('MLP: one batched matmul per layer equals K forwards', async () => {
    const device = getDevice();
    const c = mlpClassifier(16, 12, 4);
    const x = tensor(new Rng(1).uniformArray(6 * 12), [6, 12], 'f32', device);
    await compare(
      (p, v) => c.model.apply(p, v),
      c.batched,
      (s) => c.model.init(s, device),
      x,
      3,
    );
    x.dispose();
  });

  it('CNN: stacked conv1 bank + grouped conv2 equals K forwards', async () => {
    const device = getDevice();
    const c = cnnClassifier(1);
    const x = images(device, 4, 14);
    await compare(
      (p, v) => c.model.apply(p, v),
      c.batched,
      (s) => c.model.init(s, device),
      x,
      2,
    );
    x.dispose();
  });

  it('LeNet-5: the rotation experiment batched forward equals K forwards', async () => {
    const device = getDevice();
    const net = lenet5({ imageSize: 14 });
    const x = images(device, 3, 14);
    await compare(
      (p, v) => net.apply(p, v),
      batchedLenet,
      (s) => net.init(s, device),
      x,
      2,
    );
    x.dispose();
  });
});

describe('E1 toy study (float64 host oracle)', () => {
  it('correlates with the closed form at K = 10 and its spread falls with K', () => {
    const { corr, std } = toyStudy(100, 100, 0);
    expect(corr.K10).toBeGreaterThan(0.98);
    expect(corr.K100).toBeGreaterThan(0.98);
    expect(corr.K2).toBeGreaterThan(0.5);
    expect(std.K2).toBeGreaterThan(std.K10);
    expect(std.K10).toBeGreaterThan(std.K100);
  });
});
