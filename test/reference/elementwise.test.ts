import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../packages/tensor/src/errors';
import {
  BINARY_OPS,
  UNARY_OPS,
  add,
  arange,
  cast,
  div,
  eq,
  eye,
  full,
  ge,
  gt,
  le,
  lt,
  maximum,
  minimum,
  mul,
  ne,
  ones,
  pow,
  relu,
  sigmoid,
  sign,
  sub,
  tensor,
  where,
  zeros,
} from '../../packages/tensor/src/reference/index';
import { T, expectClose } from './helpers';

describe('creation', () => {
  it('tensor/zeros/ones/full/eye', () => {
    expect(tensor([1, 2, 3, 4], [2, 2])).toEqual({ shape: [2, 2], data: Float64Array.from([1, 2, 3, 4]) });
    expect(tensor([1.7, -1.7], undefined, 'i32').data).toEqual(Float64Array.from([1, -1]));
    expect(tensor([0.1], [], 'f32').data[0]).toBe(Math.fround(0.1));
    expect(zeros([2, 3]).data).toEqual(new Float64Array(6));
    expect(ones([]).data).toEqual(Float64Array.from([1]));
    expect(full([2], 7.5).data).toEqual(Float64Array.from([7.5, 7.5]));
    expect(eye(2, 3).data).toEqual(Float64Array.from([1, 0, 0, 0, 1, 0]));
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow(ShapeError);
  });

  it('arange like torch', () => {
    expect([...arange(5).data]).toEqual([0, 1, 2, 3, 4]);
    expect([...arange(1, 2, 0.25).data]).toEqual([1, 1.25, 1.5, 1.75]);
    expect([...arange(5, 0, -2).data]).toEqual([5, 3, 1]);
    expect(arange(3, 1).shape).toEqual([0]);
  });
});

describe('unary', () => {
  it('every unary op on a sample', () => {
    const x = T([-2, -0.5, 0, 0.5, 3]);
    const want: Record<keyof typeof UNARY_OPS, (v: number) => number> = {
      neg: (v) => -v,
      exp: Math.exp,
      log: Math.log,
      log1p: Math.log1p,
      expm1: Math.expm1,
      sin: Math.sin,
      cos: Math.cos,
      tanh: Math.tanh,
      sigmoid: (v) => 1 / (1 + Math.exp(-v)),
      sqrt: Math.sqrt,
      rsqrt: (v) => 1 / Math.sqrt(v),
      recip: (v) => 1 / v,
      abs: Math.abs,
      sign: Math.sign,
      relu: (v) => Math.max(v, 0),
      square: (v) => v * v,
      floor: Math.floor,
    };
    for (const [name, f] of Object.entries(UNARY_OPS)) {
      const got = f(x);
      const w = T([...x.data].map(want[name as keyof typeof UNARY_OPS]));
      expectClose(got, w, 1e-15, 0);
    }
    expect(x.data).toEqual(Float64Array.from([-2, -0.5, 0, 0.5, 3]));
  });

  it('sigmoid is stable, sign(-0) = 0, relu(NaN) = NaN', () => {
    const s = sigmoid(T([-1000, 1000, -40]));
    expect([...s.data]).toEqual([0, 1, Math.exp(-40) / (1 + Math.exp(-40))]);
    expect(Object.is(sign(T([-0])).data[0], 0)).toBe(true);
    expect(relu(T([NaN])).data[0]).toBeNaN();
  });
});

describe('binary', () => {
  it('broadcasts', () => {
    const a = T([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = T([10, 20, 30], [3]);
    const c = T([100, 200], [2, 1]);
    expect([...add(a, b).data]).toEqual([11, 22, 33, 14, 25, 36]);
    expect([...sub(a, c).data]).toEqual([-99, -98, -97, -196, -195, -194]);
    expect(mul(T([2], []), a).data).toEqual(Float64Array.from([2, 4, 6, 8, 10, 12]));
    const outer = div(T([1, 2], [2, 1, 1]), T([1, 2, 4], [1, 3]));
    expect(outer.shape).toEqual([2, 1, 3]);
    expect([...outer.data]).toEqual([1, 0.5, 0.25, 2, 1, 0.5]);
    expect(() => add(T([1, 2, 3]), T([1, 2]))).toThrow(/\[3\].*\[2\]/);
  });

  it('pow follows the contract', () => {
    const x = T([2, 0, 0, 0, -2, -2, -8]);
    const y = T([0.5, 2, 0, -1, 3, 2, 1 / 3]);
    const p = pow(x, y).data;
    expect(p[0]).toBeCloseTo(Math.SQRT2, 15);
    expect([...p.slice(1, 6)]).toEqual([0, 1, Infinity, -8, 4]);
    expect(p[6]).toBeNaN();
  });

  it('maximum/minimum propagate NaN; compares give 0/1', () => {
    expect([...maximum(T([1, NaN, 3]), T([2, 0, -1])).data]).toEqual([2, NaN, 3]);
    expect([...minimum(T([1, 5]), T([2, 0])).data]).toEqual([1, 0]);
    const a = T([1, 2, 3]);
    const b = T([2], []);
    expect([...eq(a, b).data]).toEqual([0, 1, 0]);
    expect([...ne(a, b).data]).toEqual([1, 0, 1]);
    expect([...lt(a, b).data]).toEqual([1, 0, 0]);
    expect([...le(a, b).data]).toEqual([1, 1, 0]);
    expect([...gt(a, b).data]).toEqual([0, 0, 1]);
    expect([...ge(a, b).data]).toEqual([0, 1, 1]);
    expect(Object.keys(BINARY_OPS)).toEqual(['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum']);
  });

  it('where broadcasts all three', () => {
    const w = where(T([1, 0], [2, 1]), T([1, 2, 3], [3]), T([-1], []));
    expect(w.shape).toEqual([2, 3]);
    expect([...w.data]).toEqual([1, 2, 3, -1, -1, -1]);
  });

  it('cast truncates toward zero and saturates', () => {
    expect([...cast(T([1.9, -1.9, 3e10, -3e10, NaN]), 'i32').data]).toEqual([1, -1, 2 ** 31 - 1, -(2 ** 31), 0]);
    expect([...cast(T([-1.5, 5.5]), 'u32').data]).toEqual([0, 5]);
    expect([...cast(T([-1]), 'u32', 'i32').data]).toEqual([2 ** 32 - 1]);
    expect([...cast(T([0.1]), 'f32', 'f32').data]).toEqual([Math.fround(0.1)]);
  });
});
