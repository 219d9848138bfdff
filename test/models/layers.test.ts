/** @file Functional layers against PyTorch golden fixtures, plus activations, pooling, dropout and init checks. */
import { describe, expect, it } from 'vitest';
import * as ag from '@metagrad/autograd';
import * as raw from '@metagrad/tensor';
import { InvalidArgumentError } from '@metagrad/tensor';
import * as ref from '../../packages/tensor/src/reference/index';
import type { RefTensor } from '../../packages/tensor/src/reference/index';
import {
  activation,
  avgPool2dLayer,
  batchNorm2d,
  conv2dLayer,
  disposeBatchNormState,
  disposeTree,
  dropout,
  flatten,
  globalAvgPool,
  initBatchNorm,
  initBatchNormState,
  initConv2d,
  initLinear,
  linear,
  maxPool2dLayer,
  softplus,
} from '@metagrad/models';
import { useDevice } from '../helpers/device';
import { checkGolden, expectClose, goldenCase, host, upload } from './fixture-helpers';

const device = useDevice();
const R = (x: unknown) => x as RefTensor;

describe('linear', () => {
  it('matches torch.nn.Linear (with and without bias)', async () => {
    const like = initLinear(1, 5, 3, { device: device() });
    const a = await checkGolden('linear', like, (p, { x }) => linear(p, x), { device: device() });
    const likeNb = initLinear(2, 4, 2, { bias: false, device: device() });
    expect('bias' in likeNb).toBe(false);
    const b = await checkGolden('linearNoBias', likeNb, (p, { x }) => linear(p, x), { device: device() });
    disposeTree([like, a.params, likeNb, b.params]);
  });

  it('is twice differentiable (gradgradcheck through tanh(linear))', async () => {
    const f = {
      gpu: (x: raw.Tensor, w: raw.Tensor, b: raw.Tensor) => ag.tanh(linear({ weight: w, bias: b }, x)),
      ref: (
        x: { shape: readonly number[]; data: Float64Array },
        w: { shape: readonly number[]; data: Float64Array },
        b: { shape: readonly number[]; data: Float64Array },
      ) =>
        ref.mapUnary(
          ref.mapBinary(ref.matmul(R(x), ref.transpose(R(w), 0, 1)), R(b), (p, q) => p + q),
          Math.tanh,
        ),
    };
    const val = (n: number, k: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(k * i + 1) * 0.8);
    const inputs = [
      { shape: [3, 4], data: val(12, 1.1) },
      { shape: [2, 4], data: val(8, 2.3) },
      { shape: [2], data: val(2, 0.7) },
    ];
    const second = await ag.gradgradcheck(f, inputs, { raise: false, device: device() });
    expect(second.failures).toEqual([]);
  });

  it('rejects inputs of the wrong width and bad sizes, naming them', () => {
    const p = initLinear(0, 3, 2, { device: device() });
    const x = raw.zeros([4, 5], 'f32', device());
    expect(() => linear(p, x)).toThrow(/\[4, 5\] does not fit weight \[2, 3\]/);
    expect(() => initLinear(0, 0, 2)).toThrow(InvalidArgumentError);
    expect(() => initLinear(0, 2.5, 2)).toThrow(/inFeatures must be a positive integer, got 2.5/);
    disposeTree([p, x]);
  });
});

describe('conv2d layer', () => {
  it('matches torch.nn.Conv2d (stride 2, padding 1) and grouped convolution', async () => {
    const like = initConv2d(1, 3, 4, 3, { device: device() });
    const a = await checkGolden('conv2d', like, (p, { x }) => conv2dLayer(p, x, { stride: 2, padding: 1 }), {
      device: device(),
    });
    const likeG = initConv2d(2, 4, 6, 3, { groups: 2, device: device() });
    expect(likeG.weight.shape).toEqual([6, 2, 3, 3]);
    const b = await checkGolden('conv2dGrouped', likeG, (p, { x }) => conv2dLayer(p, x, { padding: 1, groups: 2 }), {
      device: device(),
    });
    disposeTree([like, a.params, likeG, b.params]);
  });

  it('uses fan_in = C/g·k² for the init bound and validates groups', async () => {
    const p = initConv2d(3, 8, 4, 3, { groups: 2, device: device() });
    const w = await p.weight.toArray();
    const bound = 1 / Math.sqrt(4 * 9);
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(0.8 * bound);
    expect(() => initConv2d(0, 3, 4, 3, { groups: 2 })).toThrow(/groups=2 must divide inChannels=3/);
    const x = raw.zeros([1, 3, 5, 5], 'f32', device());
    expect(() => conv2dLayer(p, x)).toThrow(/does not fit weight/);
    disposeTree([p, x]);
  });
});

describe('batchNorm2d', () => {
  it('training mode matches torch: output, gradients, running mean and unbiased running variance', async () => {
    const like = initBatchNorm(4, device());
    const state = initBatchNormState(4, device());
    const { case: c, params } = await checkGolden('batchNormTrain', like, (p, { x }) => batchNorm2d(p, x, true, state), { device: device() });
    expectClose(await state.runningMean.toArray(), host(c.runningMean!), 'running mean');
    expectClose(await state.runningVar.toArray(), host(c.runningVar!), 'running variance');
    expect(state.batchesTracked).toBe(1);
    disposeTree([like, params]);
    disposeBatchNormState(state);
  });

  it('eval mode matches torch with given running statistics; the statistics get no gradient and stay put', async () => {
    const like = initBatchNorm(4, device());
    const c0 = goldenCase('batchNormEval');
    const state = {
      runningMean: upload(c0.runningMean!, device()),
      runningVar: upload(c0.runningVar!, device()),
      batchesTracked: 0,
    };
    const before = state.runningMean;
    const { params } = await checkGolden('batchNormEval', like, (p, { x }) => batchNorm2d(p, x, false, state), {
      device: device(),
    });
    expect(state.runningMean).toBe(before);
    expect(state.runningMean.requiresGrad).toBe(false);
    expect(() => batchNorm2d(params, raw.zeros([1, 4, 2, 2], 'f32', device()), false)).toThrow(/eval mode needs the running statistics/);
    expect(() => batchNorm2d(params, raw.zeros([1, 3, 2, 2], 'f32', device()), true)).toThrow(/does not have 4 channels/);
    disposeTree([like, params]);
    disposeBatchNormState(state);
  });

  it('state updates survive an enclosing tidy and leak nothing', async () => {
    const p = initBatchNorm(2, device());
    const state = initBatchNormState(2, device());
    const x = raw.uniform([3, 2, 2, 2], 9, { device: device() });
    const live = device().memory().liveTensors;
    raw.tidy(() => {
      batchNorm2d(p, x, true, state);
      batchNorm2d(p, x, true, state);
    });
    expect(device().memory().liveTensors).toBe(live);
    expect(state.batchesTracked).toBe(2);
    expect(Array.from(await state.runningMean.toArray()).every(Number.isFinite)).toBe(true);
    raw.dispose([p, x]);
    disposeBatchNormState(state);
  });
});

describe('activations, pooling, flatten', () => {
  it('softplus is exact below the threshold, x above it, with derivative σ(x) and no NaN', async () => {
    const values = [-30, -2, 0, 0.5, 19, 25, 90];
    const x = ag.requiresGrad(raw.tensor(values, [7], 'f32', device()));
    const y = softplus(x);
    const [g] = ag.grad(ag.sum(y), x);
    const sp = (v: number) => (v > 20 ? v : Math.log1p(Math.exp(v)));
    expectClose(await y.toArray(), values.map(sp), 'softplus', 1e-6, 1e-6);
    expectClose(
      await g.toArray(),
      values.map((v) => (v > 20 ? 1 : 1 / (1 + Math.exp(-v)))),
      'softplus gradient',
      1e-6,
      1e-6,
    );
    raw.dispose([x, y, g]);
  });

  it('activation() resolves names and rejects unknown ones', () => {
    expect(activation('tanh')).toBe(ag.tanh);
    expect(() => activation('gelu' as 'relu')).toThrow(/unknown activation 'gelu'/);
  });

  it('pooling layers default the stride to the kernel; flatten and globalAvgPool reshape as torch', async () => {
    const data = Float32Array.from({ length: 32 }, (_, i) => (i * 7) % 11);
    const x = raw.tensor(data, [1, 2, 4, 4], 'f32', device());
    const [mp, ap, fl, gp] = [maxPool2dLayer(x, 2), avgPool2dLayer(x, 2), flatten(x), globalAvgPool(x)];
    expect(mp.shape).toEqual([1, 2, 2, 2]);
    expect(fl.shape).toEqual([1, 32]);
    const refX = { shape: [1, 2, 4, 4], data: Float64Array.from(data) };
    expectClose(await mp.toArray(), ref.maxPool2d(refX, { kernel: 2 }).data, 'max pool');
    expectClose(await ap.toArray(), ref.avgPool2d(refX, { kernel: 2 }).data, 'avg pool');
    expectClose(await gp.toArray(), ref.mean(refX, [2, 3]).data, 'global average pool');
    raw.dispose([x, mp, ap, fl, gp]);
  });
});

describe('dropout', () => {
  it('is inverted dropout with a mask reproduced exactly from its seed', async () => {
    const x = ag.requiresGrad(raw.ones([4000], 'f32', device()));
    const y = dropout(x, 0.25, true, 42);
    const again = dropout(x, 0.25, true, 42);
    const other = dropout(x, 0.25, true, 43);
    const [vy, va, vo] = await Promise.all([y.toArray(), again.toArray(), other.toArray()]);
    expect(vy).toEqual(va);
    expect(vy).not.toEqual(vo);
    expect(new Set(Array.from(vy, (v) => Math.round(v * 1e5) / 1e5))).toEqual(new Set([0, Math.round(1e5 / 0.75) / 1e5]));
    const kept = vy.filter((v) => v > 0).length / vy.length;
    expect(Math.abs(kept - 0.75)).toBeLessThan(0.03);
    // The gradient is the same mask, scaled.
    const [g] = ag.grad(ag.sum(y), x);
    expect(await g.toArray()).toEqual(vy);
    raw.dispose([x, y, again, other, g]);
  });

  it('is the identity in eval mode or with p = 0, zero with p = 1, and needs a seed in training', async () => {
    const x = raw.uniform([10], 1, { device: device() });
    const vx = await x.toArray();
    const [evalOut, p0, p1] = [dropout(x, 0.5, false), dropout(x, 0, true), dropout(x, 1, true, 1)];
    expect(await evalOut.toArray()).toEqual(vx);
    expect(await p0.toArray()).toEqual(vx);
    expect(Array.from(await p1.toArray())).toEqual(new Array(10).fill(0));
    raw.dispose([evalOut, p0, p1]);
    expect(() => dropout(x, 0.5, true)).toThrow(/needs a seed/);
    expect(() => dropout(x, 1.5, true, 1)).toThrow(/p must be in \[0, 1\], got 1.5/);
    x.dispose();
  });
});
