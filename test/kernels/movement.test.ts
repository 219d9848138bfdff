/** @file Movement kernels (reshape, permute, expand, slice, pad, flip, concat, gather, indexSelect, scatterAdd, oneHot) against the float64 reference. */
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import fc from 'fast-check';
import { createNodeDevice } from '@metagrad/tensor/node';
// Source imports (not the package index) so this file only depends on the modules it tests.
import * as ops from '../../packages/tensor/src/ops/movement';
import { tensor } from '../../packages/tensor/src/ops/creation';
import type { Device } from '../../packages/tensor/src/device';
import type { Tensor } from '../../packages/tensor/src/tensor';
import { ShapeError, DTypeError } from '../../packages/tensor/src/errors';
import * as ref from '../../packages/tensor/src/reference/index';
import type { RefTensor } from '../../packages/tensor/src/reference/index';
import { rand, rng } from '../reference/helpers';

let device: Device;
beforeAll(async () => {
  device = await createNodeDevice();
});
afterAll(() => device?.destroy());

const up = (t: RefTensor, dtype: 'f32' | 'i32' = 'f32'): Tensor =>
  tensor(dtype === 'f32' ? Float32Array.from(t.data) : Int32Array.from(t.data), t.shape, dtype);

/** Values are exact copies in f32, so movement results must match the (f32-rounded) reference exactly. */
async function expectSame(got: Tensor, want: RefTensor): Promise<void> {
  expect(got.shape).toEqual(want.shape);
  const data = Array.from(await got.toArray());
  expect(data).toEqual(Array.from(Float32Array.from(want.data)));
  got.dispose();
}

function randInts(shape: number[], lo: number, hi: number, seed: number): RefTensor {
  const r = rng(seed);
  return ref.refTensor(
    Array.from({ length: ref.sizeOf(shape) }, () => lo + Math.floor(r() * (hi - lo))),
    shape,
  );
}

const shapeArb = fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 5 });
const nonEmptyShapeArb = fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 5 });
const runs = { numRuns: 25 };

describe('reshape', () => {
  it('shares storage and infers -1', async () => {
    const x = up(rand([2, 3, 4], 1));
    const y = ops.reshape(x, [4, -1]);
    expect(y.shape).toEqual([4, 6]);
    expect(y.storage).toBe(x.storage);
    await expectSame(y, ref.reshape(rand([2, 3, 4], 1), [4, 6]));
    expect(() => ops.reshape(x, [5, -1])).toThrow(/\[2, 3, 4\]/);
    expect(() => ops.reshape(x, [-1, -1])).toThrow(ShapeError);
    x.dispose();
  });
});

describe('permute / transpose', () => {
  it('matches the reference on random shapes and permutations', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb, fc.integer(), async (shape, seed) => {
        const perm = shape.map((_, i) => i);
        const r = rng(seed);
        for (let i = perm.length - 1; i > 0; i--) {
          const j = Math.floor(r() * (i + 1));
          [perm[i], perm[j]] = [perm[j], perm[i]];
        }
        const xr = rand(shape, seed);
        const x = up(xr);
        await expectSame(ops.permute(x, perm), ref.permute(xr, perm));
        x.dispose();
      }),
      runs,
    );
  });
  it('transposes a large non-square matrix and rank-6 tensors', async () => {
    const a = rand([37, 261], 3);
    const x = up(a);
    await expectSame(ops.transpose(x, 0, -1), ref.transpose(a, 0, -1));
    const b = rand([2, 3, 1, 4, 2, 3], 4);
    const y = up(b);
    await expectSame(ops.permute(y, [5, 3, 1, 0, 4, 2]), ref.permute(b, [5, 3, 1, 0, 4, 2]));
    x.dispose();
    y.dispose();
  });
  it('rejects bad permutations with shapes in the message', () => {
    const x = up(rand([2, 3], 1));
    expect(() => ops.permute(x, [0, 0])).toThrow(/\[2, 3\]/);
    expect(() => ops.permute(x, [0])).toThrow(ShapeError);
    x.dispose();
  });
  it('works on i32 tensors (raw word copy)', async () => {
    const a = randInts([3, 5], -100, 100, 5);
    const x = up(a, 'i32');
    const y = ops.transpose(x, 0, 1);
    expect(y.dtype).toBe('i32');
    expect(Array.from(await y.toArray())).toEqual(Array.from(ref.transpose(a, 0, 1).data));
    x.dispose();
    y.dispose();
  });
});

describe('expand', () => {
  it('matches the reference for random broadcastable targets', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb, fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: 2 }), fc.integer(), async (target, lead, seed) => {
        const r = rng(seed);
        const src = target.map((d) => (r() < 0.5 ? 1 : d));
        const xr = rand(src, seed);
        const x = up(xr);
        const shape = [...lead, ...target];
        await expectSame(ops.expand(x, shape), ref.expand(xr, shape));
        x.dispose();
      }),
      runs,
    );
  });
  it('keeps -1 dims and rejects impossible targets', async () => {
    const xr = rand([3, 1], 2);
    const x = up(xr);
    await expectSame(ops.expand(x, [2, -1, 4]), ref.expand(xr, [2, -1, 4]));
    expect(() => ops.expand(x, [4, 4])).toThrow(/\[3, 1\].*\[4, 4\]/);
    x.dispose();
  });
});

describe('slice', () => {
  it('matches the reference with random bounds and steps', async () => {
    await fc.assert(
      fc.asyncProperty(nonEmptyShapeArb, fc.integer(), async (shape, seed) => {
        const r = rng(seed);
        const k = Math.floor(r() * (shape.length + 1));
        const starts = shape.slice(0, k).map((d) => Math.floor(r() * (2 * d + 2)) - d - 1);
        const ends = shape.slice(0, k).map((d) => Math.floor(r() * (2 * d + 2)) - d);
        const steps = shape.slice(0, k).map(() => 1 + Math.floor(r() * 3));
        const xr = rand(shape, seed);
        const x = up(xr);
        await expectSame(ops.slice(x, starts, ends, steps), ref.slice(xr, starts, ends, steps));
        x.dispose();
      }),
      runs,
    );
  });
  it('rejects zero steps', () => {
    const x = up(rand([4], 1));
    expect(() => ops.slice(x, [0], [4], [0])).toThrow(/steps/);
    x.dispose();
  });
});

describe('pad', () => {
  it('matches the reference with random (also negative) pads', async () => {
    await fc.assert(
      fc.asyncProperty(nonEmptyShapeArb, fc.integer(), fc.double({ min: -5, max: 5, noNaN: true }), async (shape, seed, value) => {
        const r = rng(seed);
        const pads = shape.map((d) => [Math.floor(r() * 4) - Math.min(1, d - 1), Math.floor(r() * 3)] as [number, number]);
        const xr = rand(shape, seed);
        const x = up(xr);
        await expectSame(ops.pad(x, pads, value), ref.pad(xr, pads, Math.fround(value)));
        x.dispose();
      }),
      runs,
    );
  });
  it('pads i32 with an integer value and rejects bad pad lists', async () => {
    const a = randInts([2, 3], 0, 9, 1);
    const x = up(a, 'i32');
    const y = ops.pad(
      x,
      [
        [1, 0],
        [0, 2],
      ],
      -7,
    );
    expect(Array.from(await y.toArray())).toEqual(
      Array.from(
        ref.pad(
          a,
          [
            [1, 0],
            [0, 2],
          ],
          -7,
        ).data,
      ),
    );
    expect(() => ops.pad(x, [[1, 1]])).toThrow(/\[2, 3\]/);
    x.dispose();
    y.dispose();
  });
});

describe('flip', () => {
  it('matches the reference on random axes', async () => {
    await fc.assert(
      fc.asyncProperty(shapeArb, fc.integer(), async (shape, seed) => {
        const r = rng(seed);
        const axes = shape.map((_, i) => i).filter(() => r() < 0.5);
        const xr = rand(shape, seed);
        const x = up(xr);
        await expectSame(ops.flip(x, axes), ref.flip(xr, axes));
        x.dispose();
      }),
      runs,
    );
  });
});

describe('concat', () => {
  it('matches the reference on every axis, including empty parts', async () => {
    await fc.assert(
      fc.asyncProperty(nonEmptyShapeArb, fc.integer(), async (shape, seed) => {
        const r = rng(seed);
        const axis = Math.floor(r() * shape.length);
        const parts = Array.from({ length: 1 + Math.floor(r() * 3) }, (_, i) => {
          const s = [...shape];
          s[axis] = Math.floor(r() * 4);
          return rand(s, seed + i);
        });
        const xs = parts.map((p) => up(p));
        await expectSame(ops.concat(xs, axis - shape.length), ref.concat(parts, axis));
        xs.forEach((t) => t.dispose());
      }),
      runs,
    );
  });
  it('rejects mismatched shapes with all shapes in the message', () => {
    const a = up(rand([2, 3], 1));
    const b = up(rand([3, 3], 2));
    expect(() => ops.concat([a, b], 1)).toThrow(/\[2, 3\].*\[3, 3\]/);
    a.dispose();
    b.dispose();
  });
});

describe('gather / indexSelect', () => {
  it('gather matches torch.gather on random shapes and axes', async () => {
    await fc.assert(
      fc.asyncProperty(nonEmptyShapeArb, fc.integer(), async (shape, seed) => {
        const r = rng(seed);
        const axis = Math.floor(r() * shape.length);
        const ishape = shape.map((d, i) => (i === axis ? 1 + Math.floor(r() * 5) : 1 + Math.floor(r() * d)));
        const xr = rand(shape, seed);
        const ir = randInts(ishape, 0, shape[axis], seed + 1);
        const x = up(xr);
        const idx = up(ir, 'i32');
        await expectSame(ops.gather(x, axis, idx), ref.gather(xr, axis, ir));
        x.dispose();
        idx.dispose();
      }),
      runs,
    );
  });
  it('indexSelect matches the reference, with repeats', async () => {
    const xr = rand([3, 5, 4], 7);
    const ir = ref.refTensor([4, 0, 0, 2, 3, 1, 4]);
    const x = up(xr);
    const idx = up(ir, 'i32');
    for (const axis of [1, -2]) await expectSame(ops.indexSelect(x, axis, idx), ref.indexSelect(xr, axis, ir));
    const i0 = up(ref.refTensor([2, 0]), 'i32');
    await expectSame(ops.indexSelect(x, 0, i0), ref.indexSelect(xr, 0, ref.refTensor([2, 0])));
    expect(() => ops.indexSelect(x, 0, x)).toThrow(DTypeError);
    [x, idx, i0].forEach((t) => t.dispose());
  });
});

describe('scatterAdd', () => {
  it('matches the reference (sequential order) on random shapes', async () => {
    await fc.assert(
      fc.asyncProperty(nonEmptyShapeArb, fc.integer(), async (shape, seed) => {
        const r = rng(seed);
        const axis = Math.floor(r() * shape.length);
        const ishape = shape.map((d, i) => (i === axis ? 1 + Math.floor(r() * 6) : 1 + Math.floor(r() * d)));
        const sshape = ishape.map((d) => d + Math.floor(r() * 2));
        const xr = rand(shape, seed);
        const sr = rand(sshape, seed + 2);
        const ir = randInts(ishape, 0, shape[axis], seed + 1);
        const [x, s, idx] = [up(xr), up(sr), up(ir, 'i32')];
        const got = ops.scatterAdd(x, axis, idx, s);
        const want = ref.scatterAdd(xr, axis, ir, sr);
        const data = await got.toArray();
        want.data.forEach((v, i) => expect(Math.abs(data[i] - v)).toBeLessThan(1e-5));
        [x, s, idx, got].forEach((t) => t.dispose());
      }),
      runs,
    );
  });
  it('is deterministic and handles i32', async () => {
    const ir = randInts([400, 3], 0, 5, 9);
    const sr = rand([400, 3], 10);
    const [x, s, idx] = [up(ref.filled([5, 3], 0)), up(sr), up(ir, 'i32')];
    const [ga, gb] = [ops.scatterAdd(x, 0, idx, s), ops.scatterAdd(x, 0, idx, s)];
    expect(Array.from(await ga.toArray())).toEqual(Array.from(await gb.toArray()));
    const xi = up(randInts([5, 3], 0, 3, 1), 'i32');
    const si = up(randInts([400, 3], -3, 3, 2), 'i32');
    const gi = ops.scatterAdd(xi, 0, idx, si);
    const want = ref.scatterAdd(randInts([5, 3], 0, 3, 1), 0, ir, randInts([400, 3], -3, 3, 2));
    expect(Array.from(await gi.toArray())).toEqual(Array.from(want.data));
    expect(() => ops.scatterAdd(x, 0, idx, si)).toThrow(/\[400, 3\]/);
    [x, s, idx, xi, si, gi, ga, gb].forEach((t) => t.dispose());
  });
});

describe('oneHot', () => {
  it('matches the reference', async () => {
    const ir = randInts([3, 4], 0, 6, 3);
    const idx = up(ir, 'i32');
    await expectSame(ops.oneHot(idx, 6), ref.oneHot(ir, 6));
    expect(() => ops.oneHot(idx, 0)).toThrow(/numClasses/);
    idx.dispose();
  });
});

describe('memory', () => {
  it('leaves no live tensors behind', () => {
    expect(device.memory().liveTensors).toBe(0);
  });
});
