/** @file affineGrid, gridSample and both its gradients against the float64 reference, both alignCorners modes. */
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import fc from 'fast-check';
import { createNodeDevice } from '@metagrad/tensor/node';
// Source imports (not the package index) so this file only depends on the modules it tests.
import { affineGrid, gridSample, gridSampleInputGrad, gridSampleGridGrad } from '../../packages/tensor/src/ops/resample';
import { tensor } from '../../packages/tensor/src/ops/creation';
import type { Device } from '../../packages/tensor/src/device';
import type { Tensor } from '../../packages/tensor/src/tensor';
import { ShapeError } from '../../packages/tensor/src/errors';
import * as ref from '../../packages/tensor/src/reference/index';
import type { RefTensor } from '../../packages/tensor/src/reference/index';
import { rand, rng } from '../reference/helpers';

let device: Device;
beforeAll(async () => {
  device = await createNodeDevice();
});
afterAll(() => device?.destroy());

const up = (t: RefTensor): Tensor => tensor(Float32Array.from(t.data), t.shape);
/** The reference evaluated on the f32-rounded inputs the GPU sees (floor() of a coordinate is discontinuous). */
const f32 = (t: RefTensor): RefTensor => ({ shape: t.shape, data: Float64Array.from(Float32Array.from(t.data)) });

async function expectNear(got: Tensor, want: RefTensor, tol: number): Promise<void> {
  expect(got.shape).toEqual(want.shape);
  const data = await got.toArray();
  for (let i = 0; i < want.data.length; i++) {
    if (!(Math.abs(data[i] - want.data[i]) <= tol * (1 + Math.abs(want.data[i])))) {
      expect.fail(`element ${i} of ${ref.shapeStr(want.shape)}: got ${data[i]}, want ${want.data[i]}`);
    }
  }
  got.dispose();
}

/** Grid points spread over [−1.3, 1.3] so some corners fall outside (zero padding). */
function randomGrid(N: number, Ho: number, Wo: number, seed: number): RefTensor {
  const r = rng(seed);
  return ref.refTensor(
    Array.from({ length: N * Ho * Wo * 2 }, () => 2.6 * r() - 1.3),
    [N, Ho, Wo, 2],
  );
}

async function checkAll(xShape: number[], Ho: number, Wo: number, alignCorners: boolean, seed: number): Promise<void> {
  const [N, C] = xShape;
  const xr = rand(xShape, seed);
  const gridr = f32(randomGrid(N, Ho, Wo, seed + 1));
  const gyr = rand([N, C, Ho, Wo], seed + 2);
  const [x, grid, gy] = [up(xr), up(gridr), up(gyr)];
  const opts = { alignCorners };
  // Coordinates are computed in f32 on the GPU; the bilinear weights inherit ~1e-7·size relative error.
  const tol = 2e-5 * Math.max(xShape[2], xShape[3]);
  await expectNear(gridSample(x, grid, opts), ref.gridSample(xr, gridr, opts), tol);
  await expectNear(gridSampleInputGrad(gy, grid, xShape, opts), ref.gridSampleInputGrad(gyr, gridr, xShape, opts), tol * 4);
  await expectNear(gridSampleGridGrad(gy, x, grid, opts), ref.gridSampleGridGrad(gyr, xr, gridr, opts), tol * Math.max(4, C));
  [x, grid, gy].forEach((t) => t.dispose());
}

describe('affineGrid', () => {
  for (const alignCorners of [false, true]) {
    it(`matches the reference (alignCorners=${alignCorners}), including size-1 dims`, async () => {
      for (const size of [
        [2, 3, 5, 7],
        [1, 1, 1, 4],
        [3, 1, 6, 1],
      ]) {
        const thetar = rand([size[0], 2, 3], size[2]);
        const theta = up(thetar);
        await expectNear(affineGrid(theta, size, alignCorners), ref.affineGrid(thetar, size, alignCorners), 1e-6);
        theta.dispose();
      }
    });
  }
  it('rejects a theta that does not fit the size', () => {
    const theta = up(rand([2, 2, 3], 1));
    expect(() => affineGrid(theta, [3, 1, 4, 4])).toThrow(/\[2, 2, 3\].*\[3, 1, 4, 4\]/);
    theta.dispose();
  });
});

describe('gridSample family vs reference', () => {
  for (const alignCorners of [false, true]) {
    it(`non-square, alignCorners=${alignCorners}`, async () => checkAll([2, 3, 7, 10], 5, 6, alignCorners, 3));
    it(`upsampling many-to-one, alignCorners=${alignCorners}`, async () => checkAll([1, 2, 3, 4], 17, 13, alignCorners, 4));
  }
  it('random shapes (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          N: fc.integer({ min: 1, max: 2 }),
          C: fc.integer({ min: 1, max: 4 }),
          H: fc.integer({ min: 1, max: 9 }),
          W: fc.integer({ min: 1, max: 9 }),
          Ho: fc.integer({ min: 1, max: 8 }),
          Wo: fc.integer({ min: 1, max: 8 }),
          align: fc.boolean(),
          seed: fc.integer(),
        }),
        async (p) => checkAll([p.N, p.C, p.H, p.W], p.Ho, p.Wo, p.align, p.seed),
      ),
      { numRuns: 20 },
    );
  });
  it('identity affine grid reproduces the input (alignCorners both ways)', async () => {
    for (const alignCorners of [false, true]) {
      const xr = rand([2, 2, 5, 6], 9);
      const theta = up(ref.refTensor([1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0], [2, 2, 3]));
      const x = up(xr);
      const grid = affineGrid(theta, xr.shape, alignCorners);
      await expectNear(gridSample(x, grid, { alignCorners }), xr, 1e-5);
      [theta, x, grid].forEach((t) => t.dispose());
    }
  });
  it('input gradient is deterministic and accurate with many contributions per pixel (fixed point)', async () => {
    const g = up(f32({ shape: [1, 40, 40, 2], data: randomGrid(1, 40, 40, 5).data.map((v) => v * 0.1) }));
    const gy = up(rand([1, 3, 40, 40], 6));
    const a = gridSampleInputGrad(gy, g, [1, 3, 4, 4]);
    const b = gridSampleInputGrad(gy, g, [1, 3, 4, 4]);
    expect(Array.from(await a.toArray())).toEqual(Array.from(await b.toArray()));
    const gr = f32({ shape: [1, 40, 40, 2], data: randomGrid(1, 40, 40, 5).data.map((v) => v * 0.1) });
    await expectNear(a, ref.gridSampleInputGrad(rand([1, 3, 40, 40], 6), gr, [1, 3, 4, 4]), 1e-5);
    [g, gy, b].forEach((t) => t.dispose());
  });
});

describe('gridSample validation', () => {
  it('errors show the shapes', () => {
    const x = up(rand([2, 1, 4, 4], 1));
    const grid = up(rand([1, 3, 3, 2], 2));
    expect(() => gridSample(x, grid)).toThrow(/\[1, 3, 3, 2\].*\[2, 1, 4, 4\]/);
    const grid2 = up(rand([2, 3, 3, 2], 3));
    const gy = up(rand([2, 1, 4, 4], 4));
    expect(() => gridSampleGridGrad(gy, x, grid2)).toThrow(ShapeError);
    [x, grid, grid2, gy].forEach((t) => t.dispose());
    expect(device.memory().liveTensors).toBe(0);
  });
});
