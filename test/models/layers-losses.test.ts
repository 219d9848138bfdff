/** @file Losses against torch.nn.functional (cross-entropy per example and mean, NLL, MSE) and their helpers. */
import { describe, expect, it } from 'vitest';
import * as ag from '@metagrad/autograd';
import * as raw from '@metagrad/tensor';
import { DTypeError, InvalidArgumentError, ShapeError } from '@metagrad/tensor';
import {
  avgPool2dLayer,
  batchNorm2d,
  dropout,
  conv2dLayer,
  initBatchNorm,
  initConv2d,
  initLinear,
  maxPool2dLayer,
  accuracy,
  crossEntropy,
  crossEntropyMean,
  crossEntropyPerExample,
  mse,
  mseMean,
  nll,
  softCrossEntropy,
  weightedMean,
} from '@metagrad/models';
import { useDevice } from '../helpers/device';
import { checkGolden, expectClose } from './fixture-helpers';

const device = useDevice();
const golden = (name: string, f: (inputs: Record<string, raw.Tensor>) => raw.Tensor) => checkGolden(name, {}, (_p, inputs) => f(inputs), { device: device() });
const asVector = (t: raw.Tensor) => ag.reshape(t, [1]);

describe('losses match torch', () => {
  it('cross-entropy per example and mean', async () => {
    await golden('crossEntropyNone', ({ logits, labels }) => crossEntropyPerExample(logits, labels));
    await golden('crossEntropyMean', ({ logits, labels }) => asVector(crossEntropyMean(logits, labels)));
  });

  it('nll with mean and sum reductions', async () => {
    await golden('nllMean', ({ logProbs, labels }) => asVector(nll(logProbs, labels)));
    await golden('nllSum', ({ logProbs, labels }) => asVector(nll(logProbs, labels, 'sum')));
  });

  it('mse (gradients to both prediction and target)', async () => {
    await golden('mseMean', ({ prediction, target }) => asVector(mseMean(prediction, target)));
  });
});

describe('loss helpers', () => {
  it('nll of logSoftmax equals crossEntropy, per example', async () => {
    const logits = raw.uniform([4, 3], 1, { device: device(), low: -2, high: 2 });
    const labels = raw.tensor(Int32Array.from([2, 0, 1, 2]), [4], 'i32', device());
    const ls = ag.logSoftmax(logits, 1);
    const [a, b] = [nll(ls, labels, 'none'), crossEntropyPerExample(logits, labels)];
    expectClose(await a.toArray(), await b.toArray(), 'nll vs cross-entropy', 1e-6);
    expect(() => nll(logits, raw.zeros([3], 'i32', device()))).toThrow(ShapeError);
    raw.dispose([logits, labels, ls, a, b]);
  });

  it('weightedMean is Σ wᵢℓᵢ / N and differentiates into the weights', async () => {
    const losses = raw.tensor([1, 2, 3, 4], [4], 'f32', device());
    const w = ag.requiresGrad(raw.tensor([0.5, 1, 0, 2], [4, 1], 'f32', device()));
    const v = weightedMean(losses, w);
    expect(await v.item()).toBeCloseTo((0.5 + 2 + 0 + 8) / 4, 6);
    const [g] = ag.grad(v, w);
    expect(g.shape).toEqual([4, 1]);
    expect(Array.from(await g.toArray())).toEqual([0.25, 0.5, 0.75, 1]);
    expect(() => weightedMean(losses, raw.zeros([3], 'f32', device()))).toThrow(/must hold N values/);
    raw.dispose([losses, w, v, g]);
  });

  it('accuracy counts argmax hits', async () => {
    const logits = raw.tensor([1, 0, 0, 1, 3, 2], [3, 2], 'f32', device());
    const labels = raw.tensor(Int32Array.from([0, 0, 0]), [3], 'i32', device());
    expect(await accuracy(logits, labels)).toBeCloseTo(2 / 3, 6);
    raw.dispose([logits, labels]);
  });
});

describe('loss inputs are validated, never broadcast', () => {
  /** Expects `cls` from `f` and no tensor left behind by the failed call. */
  function expectThrowsClean(f: () => unknown, cls: new (...args: never[]) => Error, message?: RegExp): void {
    const before = device().memory().liveTensors;
    expect(f).toThrow(cls);
    if (message) expect(f).toThrow(message);
    expect(device().memory().liveTensors).toBe(before);
  }

  it('mse needs equal shapes: pred [4, 1] against target [4] would broadcast to [4, 4]', () => {
    const pred = raw.zeros([4, 1], 'f32', device());
    const target = raw.ones([4], 'f32', device());
    expectThrowsClean(() => mse(pred, target), ShapeError, /\[4, 1\] and target \[4\]/);
    expectThrowsClean(() => mseMean(pred, target), ShapeError);
    expectThrowsClean(() => ag.mse(target, pred, 'sum'), ShapeError);
    raw.dispose([pred, target]);
  });

  it('softCrossEntropy needs targets shaped like the logits', () => {
    const logits = raw.zeros([3, 4], 'f32', device());
    const targets = raw.ones([1, 4], 'f32', device());
    expectThrowsClean(() => softCrossEntropy(logits, targets), ShapeError, /must have the same shape/);
    const flat = raw.zeros([4], 'f32', device());
    expectThrowsClean(() => softCrossEntropy(flat, flat), ShapeError, /\[B, K\]/);
    raw.dispose([logits, targets, flat]);
  });

  it('class labels must be i32 and the reduction one of mean / sum / none', () => {
    const logits = raw.zeros([2, 3], 'f32', device());
    const f32Labels = raw.tensor([0, 1], [2], 'f32', device());
    const labels = raw.tensor([0, 1], [2], 'i32', device());
    expectThrowsClean(() => crossEntropy(logits, f32Labels), DTypeError, /labels must be i32/);
    expectThrowsClean(() => nll(logits, f32Labels), DTypeError, /labels must be i32/);
    expectThrowsClean(() => crossEntropy(logits, labels, 'avg' as never), InvalidArgumentError, /avg/);
    expectThrowsClean(() => nll(logits, labels, 'avg' as never), InvalidArgumentError, /avg/);
    expectThrowsClean(() => mse(logits, logits, 'avg' as never), InvalidArgumentError, /avg/);
    // Operands that are not tensors are named, not a raw TypeError.
    expectThrowsClean(() => mse(logits, 2 as never), InvalidArgumentError, /target must be a Tensor/);
    expectThrowsClean(() => crossEntropy(logits, undefined as never), InvalidArgumentError, /labels must be a Tensor/);
    expectThrowsClean(() => nll(logits, [0, 1] as never), InvalidArgumentError, /labels must be a Tensor/);
    raw.dispose([logits, f32Labels, labels]);
  });
});

describe('layer options are checked (the layers build their own op options, so a typo would vanish)', () => {
  it('unknown option keys and bad eps are an InvalidArgumentError', () => {
    const conv = initConv2d(0, 1, 2, 3, { device: device() });
    const x = raw.zeros([1, 1, 6, 6], 'f32', device());
    const bn = initBatchNorm(1, device());
    const before = device().memory().liveTensors;
    expect(() => conv2dLayer(conv, x, { strides: 2 } as never)).toThrow(/unknown option strides/);
    expect(() => maxPool2dLayer(x, 2, { stide: 1 } as never)).toThrow(InvalidArgumentError);
    expect(() => avgPool2dLayer(x, 2, { pad: 1 } as never)).toThrow(InvalidArgumentError);
    expect(() => initLinear(0, 2, 2, { biases: false } as never)).toThrow(/unknown option biases/);
    expect(() => initConv2d(0, 1, 2, 3, { group: 2 } as never)).toThrow(/unknown option group/);
    expect(() => batchNorm2d(bn, x, true, undefined, { epsilon: 1e-3 } as never)).toThrow(/unknown option epsilon/);
    expect(() => batchNorm2d(bn, x, true, undefined, { eps: -1 })).toThrow(/eps must be/);
    expect(() => batchNorm2d(bn, x, true, undefined, { eps: NaN })).toThrow(InvalidArgumentError);
    // Mode flags must be booleans: 'false' was read as training mode.
    expect(() => batchNorm2d(bn, x, 'false' as never)).toThrow(/training must be true or false/);
    expect(() => dropout(x, 0.5, 'false' as never, 1)).toThrow(/training must be true or false/);
    expect(device().memory().liveTensors).toBe(before);
    raw.dispose([conv, x, bn]);
  });
});
