import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../packages/tensor/src/errors';
import { type Conv2dOptions, conv2d, conv2dFilterGrad, conv2dInputGrad } from '../../packages/tensor/src/reference/index';
import { T, dot, expectRelClose, rand } from './helpers';

describe('conv2d', () => {
  it('hand-computed 3x3 input, 2x2 filter', () => {
    const x = T([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
    const w = T([1, 0, 0, -1], [1, 1, 2, 2]);
    expect(conv2d(x, w)).toEqual({ shape: [1, 1, 2, 2], data: Float64Array.from([-4, -4, -4, -4]) });
    // padding 1, stride 2: windows at (-1,-1), (-1,1), (1,-1), (1,1)
    const y = conv2d(x, w, { padding: 1, stride: 2 });
    expect(y.shape).toEqual([1, 1, 2, 2]);
    expect([...y.data]).toEqual([-1, -3 + 0, -7, 5 - 9]);
    // dilation 2 with a 2x2 filter touches the corners of the 3x3 input
    expect([...conv2d(x, w, { dilation: 2 }).data]).toEqual([1 - 9]);
  });

  it('groups split channels', () => {
    const x = rand([1, 4, 3, 3], 1);
    const w = rand([2, 2, 1, 1], 2);
    const y = conv2d(x, w, { groups: 2 });
    // output 1 only sees channels 2 and 3
    for (let p = 0; p < 9; p++) {
      expect(y.data[9 + p]).toBeCloseTo(w.data[2] * x.data[18 + p] + w.data[3] * x.data[27 + p], 15);
    }
    expect(() => conv2d(x, rand([2, 4, 1, 1], 1), { groups: 2 })).toThrow(ShapeError);
    expect(() => conv2d(x, rand([3, 2, 1, 1], 1), { groups: 2 })).toThrow(/groups/);
    expect(() => conv2d(x, rand([1, 4, 5, 5], 1))).toThrow(ShapeError);
  });

  const cases: [number[], number[], Conv2dOptions][] = [
    [[2, 3, 7, 6], [4, 3, 3, 2], {}],
    [[2, 4, 8, 7], [6, 2, 3, 3], { stride: [2, 3], padding: [1, 2], dilation: [2, 1], groups: 2 }],
    [[1, 6, 9, 9], [3, 2, 2, 3], { stride: 3, padding: 2, dilation: 2, groups: 3 }],
    [[1, 2, 5, 5], [2, 1, 3, 3], { stride: 2, groups: 2 }],
  ];

  it.each(cases)('input and filter grads are adjoints of conv2d (%j, %j, %j)', (xs, ws, opts) => {
    const x = rand(xs, 3);
    const w = rand(ws, 4);
    const y = conv2d(x, w, opts);
    const gy = rand(y.shape, 5);
    const lhs = dot(y, gy);
    expectRelClose(lhs, dot(x, conv2dInputGrad(gy, w, xs, opts)), 1e-12);
    expectRelClose(lhs, dot(w, conv2dFilterGrad(x, gy, ws, opts)), 1e-12);
  });

  it('grads validate grad_output', () => {
    expect(() => conv2dInputGrad(rand([1, 1, 2, 2], 1), rand([1, 1, 2, 2], 1), [1, 1, 4, 4])).toThrow(/grad_output/);
  });
});
