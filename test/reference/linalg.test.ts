import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../packages/tensor/src/errors';
import { matmul, transpose } from '../../packages/tensor/src/reference/index';
import { T, expectClose, rand } from './helpers';

describe('matmul', () => {
  it('hand-computed 2x3 @ 3x2', () => {
    const a = T([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = T([7, 8, 9, 10, 11, 12], [3, 2]);
    expect(matmul(a, b)).toEqual({ shape: [2, 2], data: Float64Array.from([58, 64, 139, 154]) });
  });

  it('transA/transB equal explicit transposes, batch dims broadcast', () => {
    const a = rand([2, 1, 3, 4], 1);
    const b = rand([3, 4, 5], 2);
    const ref = matmul(a, b);
    expect(ref.shape).toEqual([2, 3, 3, 5]);
    expectClose(matmul(transpose(a, -1, -2), b, { transA: true }), ref);
    expectClose(matmul(a, transpose(b, -1, -2), { transB: true }), ref);
    expectClose(matmul(transpose(a, -1, -2), transpose(b, -1, -2), { transA: true, transB: true }), ref);
    // batch item (1, 2) is a[1,0] @ b[2]
    const a10 = { shape: [3, 4], data: a.data.slice(12, 24) };
    const b2 = { shape: [4, 5], data: b.data.slice(40, 60) };
    expectClose({ shape: [3, 5], data: ref.data.slice((1 * 3 + 2) * 15, (1 * 3 + 3) * 15) }, matmul(a10, b2));
  });

  it('rejects bad shapes', () => {
    expect(() => matmul(T([1, 2, 3]), T([1, 2, 3], [3, 1]))).toThrow(ShapeError);
    expect(() => matmul(rand([2, 3], 1), rand([2, 3], 1))).toThrow(/inner dims/);
    expect(() => matmul(rand([2, 2, 3], 1), rand([3, 3, 2], 1))).toThrow(/batch/);
  });
});
