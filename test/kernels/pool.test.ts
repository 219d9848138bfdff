/** @file max/avg pooling and their backward passes against the float64 reference (ties, NaN, overlap, padding). */
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import fc from 'fast-check';
import { createNodeDevice } from '@metagrad/tensor/node';
// Source imports (not the package index) so this file only depends on the modules it tests.
import { maxPool2d, maxPool2dBackward, avgPool2d, avgPool2dBackward, type Pool2dOptions } from '../../packages/tensor/src/ops/pool';
import { tensor } from '../../packages/tensor/src/ops/creation';
import type { Device } from '../../packages/tensor/src/device';
import type { Tensor } from '../../packages/tensor/src/tensor';
import { InvalidArgumentError, ShapeError } from '../../packages/tensor/src/errors';
import * as ref from '../../packages/tensor/src/reference/index';
import type { RefTensor } from '../../packages/tensor/src/reference/index';
import { rand, rng } from '../reference/helpers';

let device: Device;
beforeAll(async () => {
  device = await createNodeDevice();
});
afterAll(() => device?.destroy());

const up = (t: RefTensor): Tensor => tensor(Float32Array.from(t.data), t.shape);

async function expectNear(got: Tensor, want: RefTensor, tol = 1e-5): Promise<void> {
  expect(got.shape).toEqual(want.shape);
  const data = await got.toArray();
  for (let i = 0; i < want.data.length; i++) {
    const w = want.data[i];
    if (Number.isNaN(w)) expect(data[i], `element ${i}`).toBeNaN();
    else if (data[i] !== w && !(Math.abs(data[i] - w) <= tol * (1 + Math.abs(w))))
      expect.fail(`element ${i} of ${ref.shapeStr(want.shape)}: got ${data[i]}, want ${w}`);
  }
  got.dispose();
}

/** Values on a coarse grid so windows contain ties (exercises first-max routing); exact in f32. */
function coarse(shape: number[], seed: number): RefTensor {
  const r = rng(seed);
  return ref.refTensor(
    Array.from({ length: ref.sizeOf(shape) }, () => Math.floor(r() * 5) - 2),
    shape,
  );
}

async function checkAll(xr: RefTensor, opts: Pool2dOptions, seed: number): Promise<void> {
  const x = up(xr);
  const yr = ref.maxPool2d(xr, opts);
  const gyr = rand(yr.shape, seed);
  const gy = up(gyr);
  await expectNear(maxPool2d(x, opts), yr);
  await expectNear(maxPool2dBackward(gy, x, opts), ref.maxPool2dBackward(gyr, xr, opts));
  await expectNear(avgPool2d(x, opts), ref.avgPool2d(xr, opts));
  await expectNear(avgPool2dBackward(gy, xr.shape, opts), ref.avgPool2dBackward(gyr, xr.shape, opts));
  x.dispose();
  gy.dispose();
}

describe('pooling vs reference', () => {
  const cases: [string, number[], Pool2dOptions][] = [
    ['2×2 stride 2', [2, 3, 8, 8], { kernel: 2 }],
    ['3×3 stride 1 overlap, padding 1', [1, 2, 7, 9], { kernel: 3, stride: 1, padding: 1 }],
    ['non-square kernel/stride/padding', [2, 2, 11, 7], { kernel: [3, 2], stride: [2, 1], padding: [1, 1] }],
    ['stride > kernel (unread elements)', [1, 1, 10, 10], { kernel: 2, stride: 3 }],
    ['odd sizes, kernel 3 stride 2', [3, 1, 9, 6], { kernel: 3, stride: 2 }],
    // stride = kernel takes the per-window backward kernel: leftover rows/cols, and tiles shifted by padding.
    ['2×2 stride 2, odd sizes (rows/cols no window reads)', [2, 2, 7, 9], { kernel: 2 }],
    ['non-overlapping [2, 3] with padding', [1, 2, 9, 11], { kernel: [2, 3], padding: [1, 1] }],
  ];
  for (const [name, shape, opts] of cases) {
    it(`${name} (random values)`, async () => checkAll(rand(shape, name.length), opts, 1));
    it(`${name} (ties)`, async () => checkAll(coarse(shape, name.length), opts, 2));
  }

  it('random geometries (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          N: fc.integer({ min: 1, max: 2 }),
          C: fc.integer({ min: 1, max: 3 }),
          H: fc.integer({ min: 1, max: 10 }),
          W: fc.integer({ min: 1, max: 10 }),
          kH: fc.integer({ min: 1, max: 4 }),
          kW: fc.integer({ min: 1, max: 4 }),
          sH: fc.integer({ min: 1, max: 3 }),
          sW: fc.integer({ min: 1, max: 3 }),
          pH: fc.integer({ min: 0, max: 2 }),
          pW: fc.integer({ min: 0, max: 2 }),
          ties: fc.boolean(),
          seed: fc.integer(),
        }),
        async (p) => {
          fc.pre(2 * p.pH <= p.kH && 2 * p.pW <= p.kW && p.H + 2 * p.pH >= p.kH && p.W + 2 * p.pW >= p.kW);
          const shape = [p.N, p.C, p.H, p.W];
          const xr = p.ties ? coarse(shape, p.seed) : rand(shape, p.seed);
          await checkAll(xr, { kernel: [p.kH, p.kW], stride: [p.sH, p.sW], padding: [p.pH, p.pW] }, p.seed + 1);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('propagates NaN and handles -inf windows like torch', async () => {
    const xr = ref.refTensor([1, NaN, 3, 4, -Infinity, -Infinity, -Infinity, -Infinity], [1, 2, 2, 2]);
    const x = up(xr);
    await expectNear(maxPool2d(x, { kernel: 2 }), ref.maxPool2d(xr, { kernel: 2 }));
    const gyr = ref.refTensor([5, 7], [1, 2, 1, 1]);
    const gy = up(gyr);
    await expectNear(maxPool2dBackward(gy, x, { kernel: 2 }), ref.maxPool2dBackward(gyr, xr, { kernel: 2 }));
    x.dispose();
    gy.dispose();
  });
});

describe('pooling validation', () => {
  it('errors show the shapes', () => {
    const x = up(rand([1, 1, 4, 4], 1));
    expect(() => maxPool2d(x, { kernel: 5 })).toThrow(/\[1, 1, 4, 4\]/);
    expect(() => avgPool2d(x, { kernel: 2, padding: 2 })).toThrow(InvalidArgumentError);
    const gy = up(rand([1, 1, 3, 3], 2));
    expect(() => maxPool2dBackward(gy, x, { kernel: 2 })).toThrow(/\[1, 1, 3, 3\].*\[1, 1, 2, 2\]/);
    expect(() => avgPool2dBackward(gy, [1, 4, 4], { kernel: 2 })).toThrow(ShapeError);
    x.dispose();
    gy.dispose();
    expect(device.memory().liveTensors).toBe(0);
  });
});
