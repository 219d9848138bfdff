import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, ShapeError } from '../../packages/tensor/src/errors';
import {
  concat,
  expand,
  flip,
  gather,
  indexSelect,
  oneHot,
  pad,
  permute,
  reshape,
  scatterAdd,
  slice,
  transpose,
} from '../../packages/tensor/src/reference/index';
import { T, dot, rand } from './helpers';

const x = T([0, 1, 2, 3, 4, 5], [2, 3]);

describe('layout ops', () => {
  it('reshape with -1', () => {
    expect(reshape(x, [3, -1]).shape).toEqual([3, 2]);
    expect(reshape(x, [-1]).data).toEqual(x.data);
    expect(() => reshape(x, [4, -1])).toThrow(ShapeError);
    expect(() => reshape(x, [-1, -1])).toThrow(ShapeError);
  });

  it('permute/transpose', () => {
    expect(transpose(x, 0, 1)).toEqual({ shape: [3, 2], data: Float64Array.from([0, 3, 1, 4, 2, 5]) });
    const y = rand([2, 3, 4], 2);
    const p = permute(y, [2, 0, 1]);
    expect(p.shape).toEqual([4, 2, 3]);
    expect(p.data[(3 * 2 + 1) * 3 + 2]).toBe(y.data[(1 * 3 + 2) * 4 + 3]);
    expect(permute(permute(y, [2, 0, 1]), [1, 2, 0])).toEqual(y);
    expect(() => permute(y, [0, 0, 1])).toThrow(ShapeError);
  });

  it('expand', () => {
    expect(expand(T([1, 2], [2, 1]), [3, 2, 2]).data).toEqual(Float64Array.from([1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2]));
    expect(expand(T([1, 2], [1, 2]), [-1, 2]).shape).toEqual([1, 2]);
    expect(() => expand(x, [3, 3])).toThrow(ShapeError);
  });

  it('slice with steps and negative bounds', () => {
    const y = T([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [3, 4]);
    expect(slice(y, [0, 1], [3, 4], [2, 2])).toEqual({ shape: [2, 2], data: Float64Array.from([1, 3, 9, 11]) });
    expect(slice(y, [-1], [100])).toEqual({ shape: [1, 4], data: Float64Array.from([8, 9, 10, 11]) });
    expect(slice(y, [2], [1]).shape).toEqual([0, 4]);
    expect(() => slice(y, [0], [1], [0])).toThrow(InvalidArgumentError);
  });

  it('pad (and its adjoint, slice)', () => {
    const p = pad(
      x,
      [
        [1, 0],
        [0, 2],
      ],
      -1,
    );
    expect(p.shape).toEqual([3, 5]);
    expect([...p.data]).toEqual([-1, -1, -1, -1, -1, 0, 1, 2, -1, -1, 3, 4, 5, -1, -1]);
    expect(
      pad(x, [
        [0, 0],
        [-1, 0],
      ]),
    ).toEqual({ shape: [2, 2], data: Float64Array.from([1, 2, 4, 5]) });
    const g = rand([3, 5], 9);
    expect(
      dot(
        pad(x, [
          [1, 0],
          [0, 2],
        ]),
        g,
      ),
    ).toBeCloseTo(dot(x, slice(g, [1, 0], [3, 3])), 14);
  });

  it('concat and flip', () => {
    const c = concat([x, T([9, 9], [2, 1])], 1);
    expect(c).toEqual({ shape: [2, 4], data: Float64Array.from([0, 1, 2, 9, 3, 4, 5, 9]) });
    expect(concat([x, x], 0).shape).toEqual([4, 3]);
    expect(() => concat([x, T([1, 2], [1, 2])], 0)).toThrow(ShapeError);
    expect(flip(x, [1]).data).toEqual(Float64Array.from([2, 1, 0, 5, 4, 3]));
    expect(flip(x, [0, -1]).data).toEqual(Float64Array.from([5, 4, 3, 2, 1, 0]));
  });
});

describe('indexing ops', () => {
  it('gather as torch.gather', () => {
    const g = gather(x, 1, T([2, 0, 1, 1], [2, 2]));
    expect(g).toEqual({ shape: [2, 2], data: Float64Array.from([2, 0, 4, 4]) });
    const g0 = gather(x, 0, T([1, 0, 1], [1, 3]));
    expect(g0.data).toEqual(Float64Array.from([3, 1, 5]));
    expect(() => gather(x, 1, T([3], [1, 1]))).toThrow(InvalidArgumentError);
    expect(() => gather(x, 1, T([0], [1]))).toThrow(ShapeError);
  });

  it('scatterAdd is the adjoint of gather', () => {
    const src = rand([2, 4, 3], 3);
    const idx = T(
      [...Array(24)].map((_, i) => (i * 7) % 5),
      [2, 4, 3],
    );
    const base = rand([2, 5, 3], 4);
    const zero = { shape: [2, 5, 3], data: new Float64Array(30) };
    const s = scatterAdd(zero, 1, idx, src);
    expect(dot(s, base)).toBeCloseTo(dot(src, gather(base, 1, idx)), 13);
    const withBase = scatterAdd(base, 1, idx, src);
    for (let i = 0; i < 30; i++) expect(withBase.data[i]).toBeCloseTo(base.data[i] + s.data[i], 14);
    expect(scatterAdd(T([0, 0, 0]), 0, T([0, 2, 0]), T([1, 2, 3])).data).toEqual(Float64Array.from([4, 0, 2]));
  });

  it('indexSelect and oneHot', () => {
    expect(indexSelect(x, 1, T([2, 2, 0]))).toEqual({ shape: [2, 3], data: Float64Array.from([2, 2, 0, 5, 5, 3]) });
    expect(indexSelect(x, 0, T([1]))).toEqual({ shape: [1, 3], data: Float64Array.from([3, 4, 5]) });
    expect(oneHot(T([2, 0], [2]), 3)).toEqual({ shape: [2, 3], data: Float64Array.from([0, 0, 1, 1, 0, 0]) });
    expect(() => oneHot(T([3]), 3)).toThrow(InvalidArgumentError);
    expect(() => oneHot(T([0.5]), 3)).toThrow(/integers/);
  });
});
