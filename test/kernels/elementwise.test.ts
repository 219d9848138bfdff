/** @file GPU elementwise ops against the float64 reference: unary math, broadcasting binary/compare, where, cast. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createNodeDevice } from '@metagrad/tensor/node';
import { withFusion } from '../helpers/device';
import * as ops from '@metagrad/tensor/raw';
import { DTypeError, ShapeError, type Device, type Tensor } from '@metagrad/tensor';
import * as ref from '../../packages/tensor/src/reference/index';
import type { RefTensor } from '../../packages/tensor/src/reference/index';
import { download, randRef as randRefIn, upload } from './helpers';

let device: Device;
beforeAll(async () => {
  device = await createNodeDevice();
});
afterAll(() => device?.destroy());

/** Random reference data in [-2, 2) by default for this file. */
const randRef = (shape: number[], seed: number, lo = -2, hi = 2): RefTensor => randRefIn(shape, seed, lo, hi);

function expectClose(got: RefTensor, want: RefTensor, rtol = 1e-5, atol = 1e-6, what = ''): void {
  expect(got.shape, what).toEqual(want.shape);
  for (let i = 0; i < want.data.length; i++) {
    const x = got.data[i];
    const w = want.data[i];
    const y = Math.abs(w) > 3.4028235677973366e38 ? w * Infinity : w; // f32 results overflow to ±inf
    if (Number.isNaN(y)) {
      if (!Number.isNaN(x)) expect.fail(`${what} element ${i}: got ${x}, want NaN`);
      continue;
    }
    if (x === y) continue;
    if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) expect.fail(`${what} element ${i}: got ${x}, want ${y} (shape ${JSON.stringify(want.shape)})`);
  }
}

/** Inputs per unary op: a range where the op is defined, plus the edge values the contract names. */
const UNARY_DOMAINS: Record<ops.UnaryOpName, [number, number, number[]]> = {
  neg: [-5, 5, [0, -0]],
  exp: [-20, 20, [0, -100, 100]],
  log: [1e-3, 50, [0, -1, 1, 1.0001]],
  log1p: [-0.99, 10, [0, 1e-7, -1e-7, -0.5, 0.5, -1, -2]],
  expm1: [-10, 10, [0, 1e-7, -1e-7, 0.5, -0.5, 1e-3]],
  sin: [-6, 6, [0]],
  cos: [-6, 6, [0]],
  tanh: [-10, 10, [0, 1e-6, -1e-4, 50, -50, 1e3]],
  sigmoid: [-20, 20, [0, -100, 100, -1e4]],
  sqrt: [0, 100, [0, -1, 1e-20]],
  rsqrt: [1e-3, 100, [1]],
  recip: [0.1, 10, [-0.5, 4]],
  abs: [-5, 5, [0, -0]],
  sign: [-5, 5, [0, -0, NaN]],
  relu: [-5, 5, [0, NaN]],
  square: [-5, 5, [0]],
  floor: [-5, 5, [0, -0.5, 2, -2]],
};
const UNARY_TOL: Partial<Record<ops.UnaryOpName, [number, number]>> = {
  sin: [1e-5, 2e-6],
  cos: [1e-5, 2e-6],
  log: [1e-5, 2e-6],
};

describe('unary', () => {
  for (const op of ref.UNARY_OPS ? (Object.keys(UNARY_DOMAINS) as ops.UnaryOpName[]) : []) {
    it(`${op} matches the reference (sizes not multiple of 4, edge values)`, async () => {
      const [lo, hi, edges] = UNARY_DOMAINS[op];
      for (const n of [1, 7, 1037]) {
        const x = randRef([n], n * 31 + op.length, lo, hi);
        edges.forEach((v, i) => i < n && (x.data[i] = v));
        const got = await download(ops.unary(op, upload(x)));
        const [rtol, atol] = UNARY_TOL[op] ?? [1e-5, 1e-7];
        expectClose(got, ref.UNARY_OPS[op](x), rtol, atol, `${op} n=${n}`);
      }
    });
  }

  it('named exports and the generic form agree; i32 neg/abs/relu; f32-only math throws DTypeError', async () => {
    const x = randRef([3, 5], 1);
    expectClose(await download(ops.tanh(upload(x))), ref.tanh(x));
    const xi = { shape: [6], data: Float64Array.from([-3, -1, 0, 1, 2, 7]) };
    expect(Array.from((await download(ops.neg(upload(xi, 'i32')))).data, (v) => v + 0)).toEqual([3, 1, 0, -1, -2, -7]);
    expect(Array.from((await download(ops.relu(upload(xi, 'i32')))).data)).toEqual([0, 0, 0, 1, 2, 7]);
    const t = upload(xi, 'i32');
    expect(() => ops.exp(t)).toThrow(DTypeError);
    expect(() => ops.exp(t)).toThrow(/i32 \[6\]/);
    t.dispose();
  });

  it('handles size-0 and 0-d tensors', async () => {
    expect((await download(ops.exp(upload({ shape: [0, 3], data: new Float64Array(0) })))).shape).toEqual([0, 3]);
    const s = await download(ops.exp(upload({ shape: [], data: Float64Array.from([1]) })));
    expect(s.shape).toEqual([]);
    expect(s.data[0]).toBeCloseTo(Math.E, 5);
  });
});

const BINARY: ops.ArithOpName[] = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum'];
const COMPARE: ops.CompareOpName[] = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'];

describe('binary', () => {
  it('every arithmetic and compare op matches on same-shape, scalar and broadcast operands', async () => {
    const cases: [number[], number[]][] = [
      [[37], [37]],
      [[2, 3, 5], []],
      [[], [4, 3]],
      [
        [4, 1, 3],
        [5, 1],
      ],
      [
        [2, 1, 3, 1],
        [1, 4, 1, 5],
      ],
    ];
    // Two layouts per op (rotating through the cases) keeps pipeline compiles, the dominant cost, low.
    for (const [k, op] of [...BINARY, ...COMPARE].entries()) {
      for (const [sa, sb] of [cases[k % cases.length], cases[(k + 2) % cases.length]]) {
        const a = randRef(sa, sa.length * 7 + 1, op === 'pow' ? 0.1 : -3, 3);
        const b = randRef(sb, sb.length * 5 + 2);
        if (COMPARE.includes(op as ops.CompareOpName)) for (let i = 0; i < b.data.length; i += 3) b.data[i] = a.data[i % a.data.length];
        const got = await download(ops.binary(op, upload(a), upload(b)));
        const want = (ref as unknown as Record<string, (a: RefTensor, b: RefTensor) => RefTensor>)[op](a, b);
        expectClose(got, want, 1e-5, 1e-6, `${op} ${JSON.stringify(sa)} ${JSON.stringify(sb)}`);
      }
    }
  });

  it('pow follows the contract for zero and negative bases; maximum/minimum propagate NaN', async () => {
    const a = { shape: [8], data: Float64Array.from([0, 0, 0, -2, -2, -2, -8, 3]) };
    const b = { shape: [8], data: Float64Array.from([2, 0, -1, 3, 2, 0.5, -1, 0]) };
    expectClose(await download(ops.pow(upload(a), upload(b))), ref.pow(a, b));
    const c = { shape: [3], data: Float64Array.from([NaN, 1, 2]) };
    const d = { shape: [3], data: Float64Array.from([0, NaN, 1]) };
    expectClose(await download(ops.maximum(upload(c), upload(d))), ref.maximum(c, d));
    expectClose(await download(ops.minimum(upload(c), upload(d))), ref.minimum(c, d));
    expectClose(await download(ops.ne(upload(c), upload(d))), ref.ne(c, d));
    expectClose(await download(ops.eq(upload(c), upload(c))), ref.eq(c, c));
  });

  it('i32 add/sub/mul/compare broadcast; mismatched dtypes and f32-only ops throw DTypeError', async () => {
    const a = { shape: [2, 3], data: Float64Array.from([1, -2, 3, 4, 5, -6]) };
    const b = { shape: [3], data: Float64Array.from([10, 20, -30]) };
    const ai = upload(a, 'i32');
    const bi = upload(b, 'i32');
    for (const op of ['add', 'sub', 'mul', 'lt', 'eq', 'maximum'] as const) {
      const out = ops.binary(op, ai, bi);
      expect(out.dtype).toBe(COMPARE.includes(op as ops.CompareOpName) ? 'f32' : 'i32');
      expectClose(await download(out), (ref as unknown as Record<string, (a: RefTensor, b: RefTensor) => RefTensor>)[op](a, b), 0, 0, op);
    }
    const bf = upload(b);
    expect(() => ops.add(ai, bf)).toThrow(DTypeError);
    expect(() => ops.div(ai, bi)).toThrow(DTypeError);
    [ai, bi, bf].forEach((t) => t.dispose());
  });

  it('incompatible shapes throw ShapeError naming both shapes', () => {
    const a = upload(randRef([2, 3], 1));
    const b = upload(randRef([4], 2));
    expect(() => ops.add(a, b)).toThrow(ShapeError);
    expect(() => ops.add(a, b)).toThrow(/\[2, 3\].*\[4\]/);
    a.dispose();
    b.dispose();
  });

  it('axpby: a·x + b·y in one dispatch at the call (fusion off), any length; equal f32 shapes only', async () => {
    await withFusion(device, false, async () => {
      // eager dispatch timing, whatever METAGRAD_FUSION says
      for (const n of [1, 4, 1027]) {
        const x = randRef([n], 5);
        const y = randRef([n], 6);
        const [tx, ty] = [upload(x), upload(y)];
        const dispatches = device.counters.dispatches;
        const out = ops.axpby(-0.5, tx, 3, ty);
        expect(device.counters.dispatches - dispatches).toBe(1);
        expect(out.storage.pending).toBeNull();
        expectClose(await download(out), ref.axpby(-0.5, x, 3, y), 1e-6, 1e-6, `axpby ${n}`);
        [tx, ty, out].forEach((t) => t.dispose());
      }
    });
    const a = upload(randRef([2, 3], 1));
    const b = upload(randRef([3], 2));
    expect(() => ops.axpby(1, a, 1, b)).toThrow(/axpby.*\[2, 3\].*\[3\]/);
    const c = upload({ shape: [2, 3], data: Float64Array.from([1, 2, 3, 4, 5, 6]) }, 'i32');
    expect(() => ops.axpby(1, a, 1, c)).toThrow(DTypeError);
    [a, b, c].forEach((t) => t.dispose());
  });

  it('axpby with fusion on: nothing dispatched at the call, one dispatch when read, the same values', async () => {
    await withFusion(device, true, async () => {
      for (const n of [1, 4, 1027]) {
        const x = randRef([n], 5);
        const y = randRef([n], 6);
        const [tx, ty] = [upload(x), upload(y)];
        const dispatches = device.counters.dispatches;
        const out = ops.axpby(-0.5, tx, 3, ty);
        expect(device.counters.dispatches - dispatches).toBe(0);
        expect(out.storage.pending).not.toBeNull();
        void out.buffer; // realises
        expect(device.counters.dispatches - dispatches).toBe(1);
        expectClose(await download(out), ref.axpby(-0.5, x, 3, y), 1e-6, 1e-6, `fused axpby ${n}`);
        [tx, ty, out].forEach((t) => t.dispose());
      }
    });
  });

  it('scalar fast paths match the broadcast ops', async () => {
    const x = randRef([5, 7], 3, 0.5, 2);
    const cases: [(t: Tensor, s: number) => Tensor, (r: RefTensor) => RefTensor][] = [
      [ops.addScalar, (r) => ref.addScalar(r, 1.5)],
      [ops.mulScalar, (r) => ref.mulScalar(r, 1.5)],
      [ops.rsubScalar, (r) => ref.sub({ shape: [], data: Float64Array.from([1.5]) }, r)],
      [ops.rdivScalar, (r) => ref.div({ shape: [], data: Float64Array.from([1.5]) }, r)],
      [ops.powScalar, (r) => ref.pow(r, { shape: [], data: Float64Array.from([1.5]) })],
    ];
    for (const [gpu, want] of cases) expectClose(await download(gpu(upload(x), 1.5)), want(x));
  });

  it('property: random broadcastable shapes (size-0/1 dims, ranks 0–7) match the reference', async () => {
    const dim = fc.oneof(fc.constant(1), fc.integer({ min: 0, max: 5 }));
    const arb = fc
      .array(fc.tuple(dim, fc.boolean(), fc.boolean()), { minLength: 0, maxLength: 7 })
      .chain((dims) => fc.tuple(fc.constant(dims), fc.integer({ min: 0, max: dims.length }), fc.constantFrom(...BINARY, ...COMPARE)));
    await fc.assert(
      fc.asyncProperty(arb, async ([dims, drop, op]) => {
        const sa = dims.map(([d, keepA]) => (keepA ? d : 1));
        const sb = dims.map(([d, , keepB]) => (keepB ? d : 1)).slice(drop);
        const a = randRef(sa, sa.length + 11, op === 'pow' ? 0.1 : -2, 2);
        const b = randRef(sb, sb.length + 13);
        expectClose(
          await download(ops.binary(op, upload(a), upload(b))),
          (ref as unknown as Record<string, (a: RefTensor, b: RefTensor) => RefTensor>)[op](a, b),
          1e-5,
          1e-6,
          op,
        );
      }),
      { numRuns: 60 },
    );
  });
});

describe('where and cast', () => {
  it('where broadcasts all three operands; NaN condition is true, -0 false', async () => {
    const cond = { shape: [3, 1], data: Float64Array.from([1, -0, NaN]) };
    const a = randRef([1, 4], 5);
    const b = randRef([3, 4], 6);
    expectClose(await download(ops.where(upload(cond), upload(a), upload(b))), ref.where(cond, a, b), 0, 0);
    const ci = upload({ shape: [4], data: Float64Array.from([0, 2, 0, -1]) }, 'i32');
    const ai = upload({ shape: [4], data: Float64Array.from([1, 2, 3, 4]) }, 'i32');
    const bi = upload({ shape: [], data: Float64Array.from([9]) }, 'i32');
    const w = ops.where(ci, ai, bi);
    expect(w.dtype).toBe('i32');
    expect(Array.from((await download(w)).data)).toEqual([9, 2, 9, 4]);
    [ci, ai, bi].forEach((t) => t.dispose());
  });

  it('property: where over random broadcast shapes', async () => {
    const dim = fc.integer({ min: 1, max: 4 });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(dim, fc.nat(7)), { maxLength: 5 }), async (dims) => {
        const pick = (bit: number) => dims.map(([d, m]) => (m & bit ? d : 1));
        const c = randRef(pick(1), 1);
        const a = randRef(pick(2), 2);
        const b = randRef(pick(4), 3);
        expectClose(await download(ops.where(upload(c), upload(a), upload(b))), ref.where(c, a, b), 0, 0);
      }),
      { numRuns: 30 },
    );
  });

  it('cast truncates toward zero, saturates, maps NaN to 0, reinterprets i32 ↔ u32', async () => {
    const x = { shape: [8], data: Float64Array.from([1.7, -1.7, 0.5, -0.5, 3e9, -3e9, NaN, 123456]) };
    for (const to of ['i32', 'u32', 'f32'] as const) {
      const out = ops.cast(upload(x), to);
      expect(out.dtype).toBe(to);
      expectClose(await download(out), ref.cast(x, to, 'f32'), 0, 0, `f32→${to}`);
    }
    const xi = { shape: [4], data: Float64Array.from([-1, 0, 7, -2147483648]) };
    for (const to of ['u32', 'f32', 'i32'] as const) expectClose(await download(ops.cast(upload(xi, 'i32'), to)), ref.cast(xi, to, 'i32'), 0, 0, `i32→${to}`);
  });
});
