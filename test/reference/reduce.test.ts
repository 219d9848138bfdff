import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../packages/tensor/src/errors';
import { argmax, exp, logSoftmax, logsumexp, max, mean, min, softmax, sum } from '../../packages/tensor/src/reference/index';
import { T, expectClose, rand } from './helpers';

const x = T([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [2, 3, 2]);

describe('sum/mean/max/min', () => {
  it('over all, single, multiple and negative axes with keepDims', () => {
    expect(sum(x)).toEqual({ shape: [], data: Float64Array.from([78]) });
    expect(sum(x, [1])).toEqual({ shape: [2, 2], data: Float64Array.from([9, 12, 27, 30]) });
    expect(sum(x, [0, -1], true)).toEqual({
      shape: [1, 3, 1],
      data: Float64Array.from([1 + 2 + 7 + 8, 3 + 4 + 9 + 10, 5 + 6 + 11 + 12]),
    });
    expect(mean(x, [2]).data).toEqual(Float64Array.from([1.5, 3.5, 5.5, 7.5, 9.5, 11.5]));
    expect(max(x, [0, 1]).data).toEqual(Float64Array.from([11, 12]));
    expect(min(x, [-2], true)).toEqual({ shape: [2, 1, 2], data: Float64Array.from([1, 2, 7, 8]) });
    expect(sum(x, []).data).toEqual(x.data);
    expect(max(T([1, NaN, 3])).data[0]).toBeNaN();
    expect(() => sum(x, [0, 0])).toThrow(ShapeError);
    expect(() => sum(x, [3])).toThrow(ShapeError);
    expect(() => max(T([], [2, 0]), [1])).toThrow(ShapeError);
    expect(sum(T([], [2, 0]), [1]).data).toEqual(new Float64Array(2));
  });

  it('argmax takes the first max', () => {
    const a = T([3, 1, 3, 0, 5, 5], [2, 3]);
    expect(argmax(a, 1)).toEqual({ shape: [2], data: Float64Array.from([0, 1]) });
    expect(argmax(a, 0, true)).toEqual({ shape: [1, 3], data: Float64Array.from([0, 1, 1]) });
    expect(argmax(T([1, NaN, 2, NaN]), -1).data[0]).toBe(1);
  });
});

describe('logsumexp/softmax', () => {
  it('is stable for huge inputs and handles -inf', () => {
    const big = T([1000, 1000, -1000, -Infinity, -Infinity, -Infinity], [2, 3]);
    const l = logsumexp(big, [1]);
    expect(l.data[0]).toBeCloseTo(1000 + Math.log(2), 10);
    expect(l.data[1]).toBe(-Infinity);
    const s = softmax(T([1000, 1000, 0]), 0);
    expect(s.data[0]).toBeCloseTo(0.5, 15);
    expect(s.data[2]).toBe(0);
    expect(logSoftmax(T([1000, 1000]), 0).data[0]).toBeCloseTo(-Math.log(2), 12);
  });

  it('agrees with the naive formulas on moderate values, over any axes', () => {
    const r = rand([3, 4, 5], 1);
    const naive = (axes: number[], keep: boolean) => {
      const e = exp(r);
      const s = sum(e, axes, keep);
      return { shape: s.shape, data: s.data.map(Math.log) };
    };
    expectClose(logsumexp(r, [0, 2]), naive([0, 2], false), 1e-14);
    expectClose(logsumexp(r, [1], true), naive([1], true), 1e-14);
    for (const axis of [0, 1, -1]) {
      const sm = softmax(r, axis);
      expectClose(sum(sm, [axis]), { shape: sum(r, [axis]).shape, data: new Float64Array(sum(r, [axis]).data.length).fill(1) }, 1e-14);
      expectClose(exp(logSoftmax(r, axis)), sm, 1e-13);
    }
  });
});
