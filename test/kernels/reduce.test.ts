/** @file GPU reductions and fused softmax against the float64 reference: any axes, keepDims, edge cases, large sizes. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createNodeDevice } from '@metagrad/tensor/node';
import * as ops from '@metagrad/tensor/raw';
import { DTypeError, ShapeError, tensor, type Device } from '@metagrad/tensor';
import * as ref from '../../packages/tensor/src/reference/index';
import type { RefTensor } from '../../packages/tensor/src/reference/index';
import { download, randRef as randRefIn, upload } from './helpers';

let device: Device;
beforeAll(async () => {
  device = await createNodeDevice();
});
afterAll(() => device?.destroy());

/** Random reference data in [-3, 3) by default for this file. */
const randRef = (shape: number[], seed: number, lo = -3, hi = 3): RefTensor => randRefIn(shape, seed, lo, hi);

/** |got − want| ≤ atol + rtol·|want|; sums are compared against a scale (Σ|x|) since cancellation is expected. */
function expectClose(got: RefTensor, want: RefTensor, rtol = 1e-5, atol = 1e-5, what = ''): void {
  expect(got.shape, what).toEqual(want.shape);
  for (let i = 0; i < want.data.length; i++) {
    const x = got.data[i];
    const y = want.data[i];
    if (Number.isNaN(y)) {
      if (!Number.isNaN(x)) expect.fail(`${what} element ${i}: got ${x}, want NaN`);
      continue;
    }
    if (x === y) continue;
    if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) expect.fail(`${what} element ${i}: got ${x}, want ${y} (shape ${JSON.stringify(want.shape)})`);
  }
}

type AxesOp = 'sum' | 'mean' | 'max' | 'min' | 'logsumexp';
const AXES_OPS: AxesOp[] = ['sum', 'mean', 'max', 'min', 'logsumexp'];

async function checkAxes(op: AxesOp, x: RefTensor, axes: number[] | undefined, keepDims: boolean): Promise<void> {
  const got = await download(ops[op](upload(x), axes, keepDims));
  const want = ref[op](x, axes, keepDims);
  // Tolerance scaled by the reduced count: f32 sums accumulate rounding.
  const n = Math.max(1, x.data.length / Math.max(1, want.data.length));
  expectClose(got, want, 1e-5, 1e-6 * Math.sqrt(n) * 3, `${op} ${JSON.stringify(x.shape)} axes=${JSON.stringify(axes)} keep=${keepDims}`);
}

describe('sum mean max min logsumexp', () => {
  it('every op over leading, trailing, middle, split, all and negative axes', async () => {
    const x = randRef([3, 4, 5, 6], 1);
    for (const op of AXES_OPS) {
      for (const axes of [undefined, [0], [3], [1], [1, 2], [0, 2], [-1, 0], [0, 1, 3], []]) {
        await checkAxes(op, x, axes, false);
      }
      await checkAxes(op, x, [1, 3], true);
    }
  });

  it('long reductions split into parts (row, column and vec4-column layouts)', async () => {
    const cases: [number[], number][] = [
      [[100003], 0],
      [[3, 20001], 1],
      [[30001, 3], 0],
      [[2, 9000, 8], 1],
    ];
    for (const [shape, axis] of cases) {
      const x = randRef(shape, shape.length);
      for (const op of AXES_OPS) await checkAxes(op, x, [axis], false);
      await checkAxes('sum', x, undefined, false);
    }
    const live = device.memory().liveTensors;
    const t = upload(randRef([3, 5000, 2], 9));
    ops.argmax(t, 1).dispose();
    ops.logsumexp(t, [0, 2]).dispose();
    t.dispose();
    expect(device.memory().liveTensors).toBe(live); // partial-pass intermediates are freed
  });

  it('dot: the product fused into the first pass, one pass or several; equal f32 shapes only', async () => {
    for (const shape of [[1], [7], [3, 5], [100003]]) {
      const x = randRef(shape, 11);
      const y = randRef(shape, 12);
      const [tx, ty] = [upload(x), upload(y)];
      const before = device.counters.dispatches;
      const out = ops.dot(tx, ty);
      if (shape[0] < 1000) expect(device.counters.dispatches - before).toBe(1);
      const want = ref.sum(ref.mul(x, y));
      expectClose(await download(out), want, 1e-5, 1e-6 * Math.sqrt(x.data.length) * 9, `dot ${JSON.stringify(shape)}`);
      [tx, ty, out].forEach((t) => t.dispose());
    }
    const a = upload(randRef([2, 3], 1));
    const b = upload(randRef([6], 2));
    expect(() => ops.dot(a, b)).toThrow(/dot.*\[2, 3\].*\[6\]/);
    const [e0, e1] = [upload(randRef([0], 3)), upload(randRef([0], 4))];
    const z = ops.dot(e0, e1);
    expect((await download(z)).data[0]).toBe(0);
    [a, b, e0, e1, z].forEach((t) => t.dispose());
  });

  it('NaN and infinities: max propagates NaN, logsumexp passes ±inf through', async () => {
    const x = {
      shape: [4, 3],
      data: Float64Array.from([1, NaN, 2, -Infinity, -Infinity, -Infinity, Infinity, 1, 2, 3, 4, 5]),
    };
    for (const op of AXES_OPS) await checkAxes(op, x, [1], false);
  });

  it('zero-size dims: sum 0, mean NaN, logsumexp −inf, max throws ShapeError', async () => {
    const x = { shape: [3, 0, 2], data: new Float64Array(0) };
    for (const op of ['sum', 'mean', 'logsumexp'] as const) await checkAxes(op, x, [1], false);
    expect((await download(ops.sum(upload(x), [0]))).shape).toEqual([0, 2]);
    const t = upload(x);
    expect(() => ops.max(t, [1])).toThrow(ShapeError);
    expect(() => ops.max(t, [1])).toThrow(/\[3, 0, 2\]/);
    expect(() => ops.sum(t, [3])).toThrow(ShapeError);
    t.dispose();
    const i = tensor([1, 2], [2], 'i32');
    expect(() => ops.sum(i)).toThrow(DTypeError);
    i.dispose();
  });

  it('0-d and size-1 tensors', async () => {
    const s = { shape: [], data: Float64Array.from([2.5]) };
    for (const op of AXES_OPS) await checkAxes(op, s, undefined, false);
    await checkAxes('sum', { shape: [1, 1], data: Float64Array.from([3]) }, [0], true);
  });

  it('property: random shapes and axis subsets match the reference', async () => {
    const arb = fc
      .array(fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constant(1), fc.constant(0)), { minLength: 1, maxLength: 5 })
      .chain((shape) =>
        fc.tuple(
          fc.constant(shape),
          fc.option(fc.subarray(shape.map((_, i) => i)), { nil: undefined }),
          fc.boolean(),
          fc.constantFrom<AxesOp>('sum', 'mean', 'logsumexp', 'max'),
        ),
      );
    await fc.assert(
      fc.asyncProperty(arb, async ([shape, axes, keep, op]) => {
        const x = randRef(shape, shape.length * 3 + 1);
        const ax = axes ?? shape.map((_, i) => i);
        const count = ax.reduce((p, a) => p * shape[a], 1);
        if (op === 'max' && count === 0) return; // a ShapeError, tested above
        await checkAxes(op, x, axes, keep);
      }),
      { numRuns: 60 },
    );
  });
});

describe('argmax', () => {
  it('first index of the max, NaN wins, on every layout and long rows', async () => {
    const tie = { shape: [2, 5], data: Float64Array.from([1, 3, 3, 2, 3, NaN, 1, NaN, 9, 9]) };
    expectClose(await download(ops.argmax(upload(tie), 1)), ref.argmax(tie, 1), 0, 0);
    for (const [shape, axis] of [
      [[3, 4, 5], 0],
      [[3, 4, 5], 1],
      [[3, 4, 8], 1],
      [[3, 4, 5], -1],
      [[2, 50001], 1],
      [[40001, 4], 0],
    ] as [number[], number][]) {
      const x = randRef(shape, shape[0] + axis);
      // Quantised values make ties common, so "first index" is really exercised.
      x.data = x.data.map((v) => Math.round(v * 2));
      const got = await download(ops.argmax(upload(x), axis, true));
      expectClose(got, ref.argmax(x, axis, true), 0, 0, `argmax ${JSON.stringify(shape)} axis ${axis}`);
    }
  });

  it('returns i32 and rejects empty axes', async () => {
    const t = upload(randRef([2, 3], 3));
    const a = ops.argmax(t, 0);
    expect(a.dtype).toBe('i32');
    expect(a.shape).toEqual([3]);
    a.dispose();
    t.dispose();
    const e = upload({ shape: [2, 0], data: new Float64Array(0) });
    expect(() => ops.argmax(e, 1)).toThrow(ShapeError);
    e.dispose();
  });
});

describe('softmax and logSoftmax', () => {
  it('match on each axis, for row / column / vec4-column layouts and long rows', async () => {
    for (const [shape, axis] of [
      [[4, 7], 1],
      [[4, 7], 0],
      [[3, 5, 8], 1],
      [[3, 5, 6], 1],
      [[2, 3], -1],
      [[1, 30000], 1],
      [[7], 0],
    ] as [number[], number][]) {
      const x = randRef(shape, shape.length + axis, -10, 10);
      expectClose(await download(ops.softmax(upload(x), axis)), ref.softmax(x, axis), 1e-5, 1e-7, `softmax ${JSON.stringify(shape)} ${axis}`);
      expectClose(await download(ops.logSoftmax(upload(x), axis)), ref.logSoftmax(x, axis), 1e-5, 1e-5, `logSoftmax ${JSON.stringify(shape)} ${axis}`);
    }
  });

  it('is stable for large logits and gives NaN for all −inf slices', async () => {
    const x = {
      shape: [3, 3],
      data: Float64Array.from([1000, 1001, 999, -1e4, 0, 1e4, -Infinity, -Infinity, -Infinity]),
    };
    expectClose(await download(ops.softmax(upload(x), 1)), ref.softmax(x, 1));
    expectClose(await download(ops.logSoftmax(upload(x), 1)), ref.logSoftmax(x, 1));
  });
});

describe('large reductions', () => {
  it('sums 16M floats accurately (and quickly: timing reported, not asserted)', async () => {
    const n = 1 << 24;
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = (i % 1000) / 1000;
    const x = tensor(data, [n]);
    let want = 0;
    for (let i = 0; i < n; i++) want += data[i];
    (await download(ops.sum(x))).data; // warm up the pipelines
    const t0 = performance.now();
    const reps = 5;
    for (let k = 0; k < reps; k++) ops.sum(x).dispose();
    const s = await download(ops.sum(x));
    const ms = (performance.now() - t0) / (reps + 1);
    console.log(`sum 16M: ${ms.toFixed(2)} ms per op (${((n * 4) / ms / 1e6).toFixed(1)} GB/s)`);
    expect(Math.abs(s.data[0] - want) / want).toBeLessThan(1e-5);
    x.dispose();
  });
});
