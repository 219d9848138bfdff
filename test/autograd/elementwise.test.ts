/** @file First- and second-order gradient checks of every elementwise primitive against the float64 reference. */
import { describe, it, beforeAll, afterAll } from 'vitest';
import { createNodeDevice } from '@metagrad/tensor/node';
import type { Device, Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import * as ref from '../../packages/tensor/src/reference/index';
import type { RefTensor } from '../../packages/tensor/src/reference/index';
import { checkOp, rand, type OpCase } from './helpers';

let device: Device;
beforeAll(async () => {
  device = await createNodeDevice();
});
afterAll(() => device?.destroy());

type Unary = (x: Tensor) => Tensor;
type RefUnary = (x: RefTensor) => RefTensor;
const positive = { lo: 0.3, hi: 2 };

const unaryCases: [string, Unary, RefUnary, Parameters<typeof rand>[2]?][] = [
  ['neg', ag.neg, ref.neg],
  ['exp', ag.exp, ref.exp],
  ['log', ag.log, ref.log, positive],
  ['log1p', ag.log1p, ref.log1p, positive],
  ['expm1', ag.expm1, ref.expm1],
  ['sin', ag.sin, ref.sin],
  ['cos', ag.cos, ref.cos],
  ['tanh', ag.tanh, ref.tanh],
  ['sigmoid', ag.sigmoid, ref.sigmoid],
  ['sqrt', ag.sqrt, ref.sqrt, positive],
  ['rsqrt', ag.rsqrt, ref.rsqrt, positive],
  ['recip', ag.recip, ref.recip, positive],
  ['abs', ag.abs, ref.abs, { awayFromZero: 0.05 }],
  ['relu', ag.relu, ref.relu, { awayFromZero: 0.05 }],
  ['square', ag.square, ref.square],
];

describe('unary', () => {
  for (const [name, op, refOp, range] of unaryCases) {
    it(name, async () => {
      await checkOp({ name, f: { gpu: op, ref: (x) => refOp(x as RefTensor) }, inputs: [rand([2, 3], 7, range)] });
    });
  }
});

type Binary = (a: Tensor, b: Tensor) => Tensor;
type RefBinary = (a: RefTensor, b: RefTensor) => RefTensor;

const binaryCases: [string, Binary, RefBinary, Parameters<typeof rand>[2]?, Parameters<typeof rand>[2]?][] = [
  ['add', ag.add, ref.add],
  ['sub', ag.sub, ref.sub],
  ['mul', ag.mul, ref.mul],
  ['div', ag.div, ref.div, undefined, positive],
  ['pow', ag.pow, ref.pow, positive, { lo: -1, hi: 2 }],
  ['maximum', ag.maximum, ref.maximum],
  ['minimum', ag.minimum, ref.minimum],
];

describe('binary with broadcasting', () => {
  for (const [name, op, refOp, rangeA, rangeB] of binaryCases) {
    it(name, async () => {
      const f = { gpu: op, ref: (a: unknown, b: unknown) => refOp(a as RefTensor, b as RefTensor) };
      await checkOp({ name, f, inputs: [rand([2, 3], 11, rangeA), rand([2, 3], 12, rangeB)] });
      await checkOp({ name: `${name} broadcast`, f, inputs: [rand([2, 1, 3], 13, rangeA), rand([4, 1], 14, rangeB)] });
    });
  }
});

describe('scalar forms, where, cast', () => {
  const cases: OpCase[] = [
    {
      name: 'addScalar',
      f: { gpu: (x) => ag.addScalar(x, 0.7), ref: (x) => ref.addScalar(x as RefTensor, 0.7) },
      inputs: [rand([5], 1)],
    },
    {
      name: 'mulScalar',
      f: { gpu: (x) => ag.mulScalar(x, -1.5), ref: (x) => ref.mulScalar(x as RefTensor, -1.5) },
      inputs: [rand([5], 2)],
    },
    // 7 elements: the vec4 kernel's partial last vector.
    {
      name: 'axpby',
      f: {
        gpu: (x, y) => ag.axpby(0.75, x, -2.5, y),
        ref: (x, y) => ref.axpby(0.75, x as RefTensor, -2.5, y as RefTensor),
      },
      inputs: [rand([7], 8), rand([7], 9)],
    },
    // relu's fused VJP, broadcasting x; differentiable in gy only (the mask is constant).
    {
      name: 'reluGrad',
      f: { gpu: (g, x) => ag.reluGrad(g, x), ref: (g, x) => ref.reluGrad(g as RefTensor, x as RefTensor) },
      inputs: [rand([2, 3], 10), rand([3], 11, { awayFromZero: 0.05 })],
      opts: { wrt: [0] },
    },
    {
      name: 'powScalar',
      f: { gpu: (x) => ag.powScalar(x, 2.5), ref: (x) => ref.powScalar(x as RefTensor, 2.5) },
      inputs: [rand([5], 3, positive)],
    },
    {
      name: 'where',
      f: {
        gpu: (c, a, b) => ag.where(c, a, b),
        ref: (c, a, b) => ref.where(c as RefTensor, a as RefTensor, b as RefTensor),
      },
      inputs: [{ shape: [2, 3], data: Float64Array.from([1, 0, 1, 0, 0, 1]) }, rand([2, 3], 4), rand([3], 5)],
      opts: { wrt: [1, 2] },
    },
    {
      name: 'cast f32',
      f: { gpu: (x) => ag.mul(ag.cast(x, 'f32'), x), ref: (x) => ref.mul(x as RefTensor, x as RefTensor) },
      inputs: [rand([4], 6)],
    },
  ];
  for (const c of cases) it(c.name, () => checkOp(c));
});
