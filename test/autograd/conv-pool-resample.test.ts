/** @file First- and second-order checks of conv2d and its backward primitives, pooling, and grid sampling. */
import { describe, it, beforeAll, afterAll } from 'vitest';
import { createNodeDevice } from '@metagrad/tensor/node';
import type { Device } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import * as ref from '../../packages/tensor/src/reference/index';
import type { RefTensor } from '../../packages/tensor/src/reference/index';
import { checkOp, distinct, rand, type OpCase } from './helpers';

let device: Device;
beforeAll(async () => {
  device = await createNodeDevice();
});
afterAll(() => device?.destroy());

const R = (x: unknown) => x as RefTensor;
const convOpts = { stride: 2, padding: 1, groups: 2 } as const;
const xShape = [1, 4, 5, 5];
const wShape = [4, 2, 3, 3];
const yShape = [1, 4, 3, 3];

const conv: OpCase[] = [
  {
    name: 'conv2d',
    f: { gpu: (x, w) => ag.conv2d(x, w, convOpts), ref: (x, w) => ref.conv2d(R(x), R(w), convOpts) },
    inputs: [rand(xShape, 1), rand(wShape, 2)],
  },
  {
    name: 'conv2d dilation',
    f: { gpu: (x, w) => ag.conv2d(x, w, { dilation: 2 }), ref: (x, w) => ref.conv2d(R(x), R(w), { dilation: 2 }) },
    inputs: [rand([2, 2, 5, 5], 3), rand([3, 2, 2, 2], 4)],
  },
  {
    name: 'conv2dInputGrad',
    f: {
      gpu: (g, w) => ag.conv2dInputGrad(g, w, xShape, convOpts),
      ref: (g, w) => ref.conv2dInputGrad(R(g), R(w), xShape, convOpts),
    },
    inputs: [rand(yShape, 5), rand(wShape, 6)],
  },
  {
    name: 'conv2dFilterGrad',
    f: {
      gpu: (x, g) => ag.conv2dFilterGrad(x, g, wShape, convOpts),
      ref: (x, g) => ref.conv2dFilterGrad(R(x), R(g), wShape, convOpts),
    },
    inputs: [rand(xShape, 7), rand(yShape, 8)],
  },
  // conv → tanh has a nonzero Hessian with mixed x/w blocks.
  {
    name: 'tanh(conv2d)',
    f: {
      gpu: (x, w) => ag.tanh(ag.conv2d(x, w, { padding: 1 })),
      ref: (x, w) => ref.tanh(ref.conv2d(R(x), R(w), { padding: 1 })),
    },
    inputs: [rand([1, 2, 4, 4], 9), rand([2, 2, 3, 3], 10)],
  },
];

const overlapping = { kernel: 3, stride: 2, padding: 1 } as const;
const pool: OpCase[] = [
  {
    name: 'maxPool2d',
    f: { gpu: (x) => ag.maxPool2d(x, { kernel: 2 }), ref: (x) => ref.maxPool2d(R(x), { kernel: 2 }) },
    inputs: [distinct([1, 2, 4, 4], 1)],
  },
  {
    name: 'maxPool2d overlapping, padded',
    f: { gpu: (x) => ag.maxPool2d(x, overlapping), ref: (x) => ref.maxPool2d(R(x), overlapping) },
    inputs: [distinct([1, 2, 5, 5], 2)],
  },
  {
    name: 'maxPool2dBackward (in gy)',
    f: {
      gpu: (g, x) => ag.maxPool2dBackward(g, x, overlapping),
      ref: (g, x) => ref.maxPool2dBackward(R(g), R(x), overlapping),
    },
    inputs: [rand([1, 2, 3, 3], 3), distinct([1, 2, 5, 5], 4)],
    opts: { wrt: [0] },
  },
  {
    name: 'avgPool2d',
    f: { gpu: (x) => ag.avgPool2d(x, overlapping), ref: (x) => ref.avgPool2d(R(x), overlapping) },
    inputs: [rand([1, 2, 5, 5], 5)],
  },
  {
    name: 'avgPool2dBackward',
    f: {
      gpu: (g) => ag.avgPool2dBackward(g, [1, 2, 5, 5], overlapping),
      ref: (g) => ref.avgPool2dBackward(R(g), [1, 2, 5, 5], overlapping),
    },
    inputs: [rand([1, 2, 3, 3], 6)],
  },
  // Max-pool after a square: second derivatives route through maxPool2dBackward's VJP.
  {
    name: 'maxPool2d(x²)',
    f: {
      gpu: (x) => ag.maxPool2d(ag.square(x), overlapping),
      ref: (x) => ref.maxPool2d(ref.square(R(x)), overlapping),
    },
    // Positive values: squaring symmetric values would create ties.
    inputs: [{ shape: [1, 1, 5, 5], data: distinct([1, 1, 5, 5], 7, 0.13).data.map((v) => v + 2) }],
  },
];

/** Sample points kept away from pixel boundaries so finite differences do not cross a bilinear kink. */
const grid = (shape: number[], seed: number) => rand(shape, seed, { lo: -0.9, hi: 0.9 });

const resample: OpCase[] = [
  {
    name: 'affineGrid',
    f: { gpu: (t) => ag.affineGrid(t, [2, 1, 3, 4]), ref: (t) => ref.affineGrid(R(t), [2, 1, 3, 4]) },
    inputs: [rand([2, 2, 3], 1)],
  },
  {
    name: 'affineGrid alignCorners',
    f: { gpu: (t) => ag.affineGrid(t, [1, 1, 3, 2], true), ref: (t) => ref.affineGrid(R(t), [1, 1, 3, 2], true) },
    inputs: [rand([1, 2, 3], 2)],
  },
  {
    name: 'gridSample',
    f: { gpu: (x, g) => ag.gridSample(x, g), ref: (x, g) => ref.gridSample(R(x), R(g)) },
    inputs: [rand([1, 2, 4, 4], 3), grid([1, 3, 2, 2], 4)],
  },
  {
    name: 'gridSample alignCorners',
    f: {
      gpu: (x, g) => ag.gridSample(x, g, { alignCorners: true }),
      ref: (x, g) => ref.gridSample(R(x), R(g), { alignCorners: true }),
    },
    inputs: [rand([2, 1, 3, 4], 5), grid([2, 2, 2, 2], 6)],
  },
  {
    name: 'gridSampleInputGrad',
    f: {
      gpu: (g, gr) => ag.gridSampleInputGrad(g, gr, [1, 2, 4, 4]),
      ref: (g, gr) => ref.gridSampleInputGrad(R(g), R(gr), [1, 2, 4, 4]),
    },
    inputs: [rand([1, 2, 3, 2], 7), grid([1, 3, 2, 2], 8)],
  },
  {
    name: 'gridSampleGridGrad',
    f: {
      gpu: (g, x, gr) => ag.gridSampleGridGrad(g, x, gr),
      ref: (g, x, gr) => ref.gridSampleGridGrad(R(g), R(x), R(gr)),
    },
    inputs: [rand([1, 2, 3, 2], 9), rand([1, 2, 4, 4], 10), grid([1, 3, 2, 2], 11)],
  },
  {
    name: 'gridSample(x, affineGrid(θ))',
    f: {
      gpu: (x, t) => ag.gridSample(x, ag.affineGrid(t, [1, 2, 3, 3])),
      ref: (x, t) => ref.gridSample(R(x), ref.affineGrid(R(t), [1, 2, 3, 3])),
    },
    inputs: [rand([1, 2, 4, 4], 12), { shape: [1, 2, 3], data: Float64Array.from([0.8, 0.1, 0.05, -0.15, 0.7, 0.1]) }],
  },
];

describe('convolution', () => {
  for (const c of conv) it(c.name, () => checkOp(c));
});
describe('pooling', () => {
  for (const c of pool) it(c.name, () => checkOp(c));
});
describe('resampling', () => {
  for (const c of resample) it(c.name, () => checkOp(c));
});
