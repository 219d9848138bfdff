/** @file First- and second-order gradient checks of reductions, the softmax family, movement ops and matmul. */
import { describe, it, beforeAll, afterAll } from 'vitest';
import { createNodeDevice } from '@metagrad/tensor/node';
import type { Device } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import * as ref from '../../packages/tensor/src/reference/index';
import type { RefTensor } from '../../packages/tensor/src/reference/index';
import { checkOp, distinct, ints, rand, type OpCase } from './helpers';

let device: Device;
beforeAll(async () => {
  device = await createNodeDevice();
});
afterAll(() => device?.destroy());

const R = (x: unknown) => x as RefTensor;

const reductions: OpCase[] = [
  { name: 'sum all', f: { gpu: (x) => ag.sum(x), ref: (x) => ref.sum(R(x)) }, inputs: [rand([2, 3], 1)] },
  {
    name: 'dot (fused product-sum)',
    f: { gpu: (x, y) => ag.dot(x, y), ref: (x, y) => ref.sum(ref.mul(R(x), R(y))) },
    inputs: [rand([7], 3), rand([7], 4)],
  },
  {
    name: 'sum axis keepDims',
    f: { gpu: (x) => ag.sum(x, [1], true), ref: (x) => ref.sum(R(x), [1], true) },
    inputs: [rand([2, 3, 2], 2)],
  },
  {
    name: 'mean axes',
    f: { gpu: (x) => ag.mean(x, [0, 2]), ref: (x) => ref.mean(R(x), [0, 2]) },
    inputs: [rand([2, 3, 2], 3)],
  },
  {
    name: 'max axis',
    f: { gpu: (x) => ag.max(x, [1]), ref: (x) => ref.max(R(x), [1]) },
    inputs: [distinct([3, 4], 4)],
  },
  { name: 'min all', f: { gpu: (x) => ag.min(x), ref: (x) => ref.min(R(x)) }, inputs: [distinct([3, 4], 5)] },
  {
    name: 'logsumexp',
    f: { gpu: (x) => ag.logsumexp(x, [1], true), ref: (x) => ref.logsumexp(R(x), [1], true) },
    inputs: [rand([3, 4], 6)],
  },
  {
    name: 'softmax',
    f: { gpu: (x) => ag.softmax(x, -1), ref: (x) => ref.softmax(R(x), -1) },
    inputs: [rand([3, 4], 7)],
  },
  {
    name: 'softmax axis 0',
    f: { gpu: (x) => ag.softmax(x, 0), ref: (x) => ref.softmax(R(x), 0) },
    inputs: [rand([3, 4], 8)],
  },
  {
    name: 'logSoftmax',
    f: { gpu: (x) => ag.logSoftmax(x, 1), ref: (x) => ref.logSoftmax(R(x), 1) },
    inputs: [rand([3, 4], 9)],
  },
];

const movement: OpCase[] = [
  {
    name: 'reshape',
    f: {
      gpu: (x) => ag.mul(ag.reshape(x, [3, 2]), ag.reshape(x, [3, 2])),
      ref: (x) => ref.square(ref.reshape(R(x), [3, 2])),
    },
    inputs: [rand([2, 3], 1)],
  },
  {
    name: 'permute',
    f: { gpu: (x) => ag.permute(x, [2, 0, 1]), ref: (x) => ref.permute(R(x), [2, 0, 1]) },
    inputs: [rand([2, 3, 4], 2)],
  },
  {
    name: 'transpose',
    f: { gpu: (x) => ag.transpose(x, 0, -1), ref: (x) => ref.transpose(R(x), 0, -1) },
    inputs: [rand([2, 3], 3)],
  },
  {
    name: 'expand',
    f: { gpu: (x) => ag.expand(x, [2, 3, 4]), ref: (x) => ref.expand(R(x), [2, 3, 4]) },
    inputs: [rand([3, 1], 4)],
  },
  {
    name: 'slice',
    f: { gpu: (x) => ag.slice(x, [1, 0], [3, 5], [1, 2]), ref: (x) => ref.slice(R(x), [1, 0], [3, 5], [1, 2]) },
    inputs: [rand([4, 5], 5)],
  },
  {
    name: 'slice negative bounds',
    f: { gpu: (x) => ag.slice(x, [-3], [-1]), ref: (x) => ref.slice(R(x), [-3], [-1]) },
    inputs: [rand([5, 2], 6)],
  },
  {
    name: 'pad',
    f: {
      gpu: (x) =>
        ag.pad(
          x,
          [
            [1, 0],
            [2, 1],
          ],
          0.5,
        ),
      ref: (x) =>
        ref.pad(
          R(x),
          [
            [1, 0],
            [2, 1],
          ],
          0.5,
        ),
    },
    inputs: [rand([2, 3], 7)],
  },
  {
    name: 'concat',
    f: { gpu: (a, b) => ag.concat([a, b], 1), ref: (a, b) => ref.concat([R(a), R(b)], 1) },
    inputs: [rand([2, 1], 8), rand([2, 3], 9)],
  },
  {
    name: 'flip',
    f: { gpu: (x) => ag.flip(x, [0, 1]), ref: (x) => ref.flip(R(x), [0, 1]) },
    inputs: [rand([2, 3], 10)],
  },
  {
    name: 'gather',
    f: { gpu: (x, i) => ag.gather(x, 1, i), ref: (x, i) => ref.gather(R(x), 1, R(i)) },
    inputs: [rand([3, 4], 11), ints([3, 5], 12, 0, 4)],
  },
  {
    name: 'indexSelect',
    f: { gpu: (x, i) => ag.indexSelect(x, 0, i), ref: (x, i) => ref.indexSelect(R(x), 0, R(i)) },
    inputs: [rand([3, 2], 13), ints([4], 14, 0, 3)],
  },
  {
    name: 'scatterAdd',
    f: { gpu: (x, i, s) => ag.scatterAdd(x, 0, i, s), ref: (x, i, s) => ref.scatterAdd(R(x), 0, R(i), R(s)) },
    inputs: [rand([3, 2], 15), ints([4, 2], 16, 0, 3), rand([4, 2], 17)],
  },
];

const linalg: OpCase[] = [
  {
    name: 'matmul',
    f: { gpu: (a, b) => ag.matmul(a, b), ref: (a, b) => ref.matmul(R(a), R(b)) },
    inputs: [rand([2, 3], 1), rand([3, 4], 2)],
  },
  {
    name: 'matmul transA transB',
    f: {
      gpu: (a, b) => ag.matmul(a, b, { transA: true, transB: true }),
      ref: (a, b) => ref.matmul(R(a), R(b), { transA: true, transB: true }),
    },
    inputs: [rand([3, 2], 3), rand([4, 3], 4)],
  },
  {
    name: 'matmul batch broadcast',
    f: { gpu: (a, b) => ag.matmul(a, b, { transB: true }), ref: (a, b) => ref.matmul(R(a), R(b), { transB: true }) },
    inputs: [rand([2, 2, 3], 5), rand([4, 3], 6)],
  },
  // A nonlinear composite so the Hessian is not zero: tanh(x W) summed with weights.
  {
    name: 'tanh(x·W)',
    f: { gpu: (x, w) => ag.tanh(ag.matmul(x, w)), ref: (x, w) => ref.tanh(ref.matmul(R(x), R(w))) },
    inputs: [rand([2, 3], 7), rand([3, 2], 8)],
  },
];

/** Reference composites, written with the float64 reference ops. */
function refCrossEntropy(logits: RefTensor, labels: RefTensor): RefTensor {
  const picked = ref.gather(ref.logSoftmax(logits, 1), 1, ref.reshape(labels, [labels.shape[0], 1]));
  return ref.neg(ref.mean(picked));
}

const losses: OpCase[] = [
  {
    name: 'crossEntropy',
    f: { gpu: (z, y) => ag.crossEntropy(z, y), ref: (z, y) => refCrossEntropy(R(z), R(y)) },
    inputs: [rand([4, 3], 1), ints([4], 2, 0, 3)],
  },
  {
    name: 'softCrossEntropy (sum)',
    f: {
      gpu: (z, p) => ag.softCrossEntropy(z, p, 'sum'),
      ref: (z, p) => ref.neg(ref.sum(ref.mul(R(p), ref.logSoftmax(R(z), 1)))),
    },
    inputs: [rand([2, 3], 3), rand([2, 3], 4, { lo: 0, hi: 1 })],
  },
  {
    name: 'mse',
    f: { gpu: (a, b) => ag.mse(a, b), ref: (a, b) => ref.mean(ref.square(ref.sub(R(a), R(b)))) },
    inputs: [rand([2, 3], 5), rand([2, 3], 6)],
  },
];

describe('losses', () => {
  for (const c of losses) it(c.name, () => checkOp(c));
});

describe('reductions and softmax', () => {
  for (const c of reductions) it(c.name, () => checkOp(c));
});
describe('movement', () => {
  for (const c of movement) it(c.name, () => checkOp(c));
});
describe('matmul', () => {
  for (const c of linalg) it(c.name, () => checkOp(c));
});
