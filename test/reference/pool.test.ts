import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../packages/tensor/src/errors';
import { type Pool2dOptions, avgPool2d, avgPool2dBackward, maxPool2d, maxPool2dBackward } from '../../packages/tensor/src/reference/index';
import { T, dot, expectRelClose, rand } from './helpers';

const x = T([1, 5, 2, 0, 3, 4, 9, 8, 7, 6, 1, 2, 0, 3, 3, 4], [1, 1, 4, 4]);

describe('max pool', () => {
  it('hand-computed 2x2/2', () => {
    expect(maxPool2d(x, { kernel: 2 })).toEqual({ shape: [1, 1, 2, 2], data: Float64Array.from([5, 9, 7, 4]) });
    expect(maxPool2dBackward(T([1, 2, 3, 4], [1, 1, 2, 2]), x, { kernel: 2 }).data).toEqual(
      Float64Array.from([0, 1, 0, 0, 0, 0, 2, 0, 3, 0, 0, 0, 0, 0, 0, 4]),
    );
  });

  it('padding counts as -inf; overlapping windows accumulate; ties go to the first', () => {
    const neg = T([-5, -6, -7, -8], [1, 1, 2, 2]);
    expect([...maxPool2d(neg, { kernel: 2, stride: 1, padding: 1 }).data]).toEqual([-5, -5, -6, -5, -5, -6, -7, -7, -8]);
    const g = maxPool2dBackward(T(Array(9).fill(1), [1, 1, 3, 3]), neg, { kernel: 2, stride: 1, padding: 1 });
    expect([...g.data]).toEqual([4, 2, 2, 1]);
    const ties = T([1, 1, 1, 1], [1, 1, 2, 2]);
    expect([...maxPool2dBackward(T([1], [1, 1, 1, 1]), ties, { kernel: 2 }).data]).toEqual([1, 0, 0, 0]);
    expect(() => maxPool2d(x, { kernel: 2, padding: 2 })).toThrow(InvalidArgumentError);
  });

  it('backward is the adjoint of the linearized forward (distinct values)', () => {
    const opts: Pool2dOptions = { kernel: [3, 2], stride: [2, 1], padding: [1, 1] };
    const xs = rand([2, 3, 7, 6], 1);
    const y = maxPool2d(xs, opts);
    const gy = rand(y.shape, 2);
    const d = rand(xs.shape, 3);
    // maxPool is piecewise linear: for a tiny perturbation the argmaxes stay put, so y(x + εd) − y(x) = ε·J d.
    const eps = 1e-7;
    const yp = maxPool2d({ shape: xs.shape, data: xs.data.map((v, i) => v + eps * d.data[i]) }, opts);
    const jd = { shape: y.shape, data: yp.data.map((v, i) => (v - y.data[i]) / eps) };
    expectRelClose(dot(jd, gy), dot(d, maxPool2dBackward(gy, xs, opts)), 1e-6);
  });
});

describe('avg pool', () => {
  it('hand-computed with padding (count_include_pad)', () => {
    expect([...avgPool2d(x, { kernel: 2 }).data]).toEqual([13 / 4, 19 / 4, 16 / 4, 10 / 4]);
    const p = avgPool2d(T([4, 8, 12, 16], [1, 1, 2, 2]), { kernel: 2, stride: 2, padding: 1 });
    expect([...p.data]).toEqual([1, 2, 3, 4]);
  });

  it.each<[number[], Pool2dOptions]>([
    [[2, 3, 6, 6], { kernel: 2 }],
    [[1, 2, 7, 5], { kernel: [3, 2], stride: [2, 1], padding: [1, 1] }],
    [[1, 1, 5, 5], { kernel: 3, stride: 1, padding: 1 }],
  ])('backward is the adjoint (%j %j)', (shape, opts) => {
    const xs = rand(shape, 4);
    const y = avgPool2d(xs, opts);
    const gy = rand(y.shape, 5);
    expectRelClose(dot(y, gy), dot(xs, avgPool2dBackward(gy, shape, opts)), 1e-12);
  });
});
