/** @file conv2d and its input/filter gradients against the float64 reference over stride/padding/dilation/groups combos. */
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import fc from 'fast-check';
import { createNodeDevice } from '@metagrad/tensor/node';
// Source imports (not the package index) so this file only depends on the modules it tests.
import { conv2d, conv2dInputGrad, conv2dFilterGrad, type Conv2dOptions } from '../../packages/tensor/src/ops/conv';
import { tensor } from '../../packages/tensor/src/ops/creation';
import type { Device } from '../../packages/tensor/src/device';
import type { Tensor } from '../../packages/tensor/src/tensor';
import { DTypeError, ShapeError } from '../../packages/tensor/src/errors';
import * as ref from '../../packages/tensor/src/reference/index';
import type { RefTensor } from '../../packages/tensor/src/reference/index';
import { rand } from '../reference/helpers';

let device: Device;
beforeAll(async () => {
  device = await createNodeDevice();
});
afterAll(() => device?.destroy());

const up = (t: RefTensor): Tensor => tensor(Float32Array.from(t.data), t.shape);

/** f32 accumulation of `terms` products of values in [−1, 1]: error grows like sqrt(terms)·eps. */
async function expectNear(got: Tensor, want: RefTensor, terms: number): Promise<void> {
  expect(got.shape).toEqual(want.shape);
  const data = await got.toArray();
  const tol = 1e-6 * (4 + 2 * Math.sqrt(terms)) * 4;
  for (let i = 0; i < want.data.length; i++) {
    if (!(Math.abs(data[i] - want.data[i]) <= tol * (1 + Math.abs(want.data[i])))) {
      expect.fail(`element ${i} of ${ref.shapeStr(want.shape)}: got ${data[i]}, want ${want.data[i]}`);
    }
  }
  got.dispose();
}

interface Case {
  x: number[];
  w: number[];
  opts: Conv2dOptions;
}

async function checkCase({ x: xs, w: ws, opts }: Case, seed: number): Promise<void> {
  const xr = rand(xs, seed);
  const wr = rand(ws, seed + 1);
  const yr = ref.conv2d(xr, wr, opts);
  const gyr = rand(yr.shape, seed + 2);
  const [x, w, gy] = [up(xr), up(wr), up(gyr)];
  const taps = ws[1] * ws[2] * ws[3];
  await expectNear(conv2d(x, w, opts), yr, taps);
  await expectNear(conv2dInputGrad(gy, w, xs, opts), ref.conv2dInputGrad(gyr, wr, xs, opts), ws[0] * ws[2] * ws[3]);
  await expectNear(conv2dFilterGrad(x, gy, ws, opts), ref.conv2dFilterGrad(xr, gyr, ws, opts), yr.shape[0] * yr.shape[2] * yr.shape[3]);
  [x, w, gy].forEach((t) => t.dispose());
}

const cases: [string, Case][] = [
  ['1×1 plain', { x: [1, 1, 1, 1], w: [1, 1, 1, 1], opts: {} }],
  ['LeNet 5×5, O=6 (not a block multiple)', { x: [3, 1, 12, 12], w: [6, 1, 5, 5], opts: {} }],
  ['3×3 same padding', { x: [2, 5, 9, 7], w: [11, 5, 3, 3], opts: { padding: 1 } }],
  ['stride 2, padding 1', { x: [2, 3, 11, 10], w: [4, 3, 3, 3], opts: { stride: 2, padding: 1 } }],
  ['non-square stride/padding/kernel', { x: [1, 2, 13, 9], w: [3, 2, 4, 2], opts: { stride: [3, 2], padding: [2, 1] } }],
  ['dilation', { x: [2, 2, 10, 12], w: [5, 2, 3, 3], opts: { dilation: [2, 3], padding: [1, 2] } }],
  ['groups', { x: [2, 6, 8, 8], w: [9, 2, 3, 3], opts: { groups: 3, padding: 1 } }],
  ['depthwise stride 2', { x: [1, 4, 9, 9], w: [4, 1, 3, 3], opts: { groups: 4, stride: 2 } }],
  ['stride > kernel (unread rows)', { x: [1, 2, 10, 11], w: [3, 2, 2, 2], opts: { stride: 3 } }],
  ['large kernel (generic filter-grad kernel)', { x: [2, 2, 9, 8], w: [5, 2, 6, 5], opts: { padding: [2, 1] } }],
  ['wide kernel > tap block', { x: [2, 1, 6, 20], w: [2, 1, 2, 9], opts: { padding: [0, 4], dilation: [1, 2] } }],
  // Row kernel: whole 14-px rows × 16 channels, and rows split over two pixel blocks (28 → 2 × 14 at 16 channels).
  ['3×3 whole rows, 32 channels (row kernel)', { x: [2, 16, 16, 16], w: [32, 16, 3, 3], opts: {} }],
  ['5×5 same padding, 28-px rows in two blocks', { x: [2, 2, 28, 28], w: [16, 2, 5, 5], opts: { padding: 2 } }],
  ['padding beyond the filter (negative transposed padding)', { x: [1, 2, 5, 6], w: [3, 2, 2, 2], opts: { padding: 2 } }],
  ['very wide dilated filter (direct kernel fallback)', { x: [1, 2, 3, 90], w: [3, 2, 1, 5], opts: { dilation: [1, 20] } }],
];

describe('conv2d family vs reference', () => {
  for (const [name, c] of cases) it(name, async () => checkCase(c, name.length));

  it('random geometries (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          N: fc.integer({ min: 1, max: 3 }),
          G: fc.integer({ min: 1, max: 3 }),
          Cg: fc.integer({ min: 1, max: 3 }),
          Og: fc.integer({ min: 1, max: 10 }),
          H: fc.integer({ min: 1, max: 12 }),
          W: fc.integer({ min: 1, max: 12 }),
          // Few distinct filter sizes: the filter gradient compiles one pipeline per (kH, kW).
          kH: fc.constantFrom(1, 2, 3),
          kW: fc.constantFrom(1, 3, 5),
          sH: fc.integer({ min: 1, max: 3 }),
          sW: fc.integer({ min: 1, max: 3 }),
          pH: fc.integer({ min: 0, max: 2 }),
          pW: fc.integer({ min: 0, max: 2 }),
          dH: fc.integer({ min: 1, max: 2 }),
          dW: fc.integer({ min: 1, max: 2 }),
          seed: fc.integer(),
        }),
        async (p) => {
          const opts = {
            stride: [p.sH, p.sW],
            padding: [p.pH, p.pW],
            dilation: [p.dH, p.dW],
            groups: p.G,
          } as Conv2dOptions;
          const Ho = Math.floor((p.H + 2 * p.pH - p.dH * (p.kH - 1) - 1) / p.sH) + 1;
          const Wo = Math.floor((p.W + 2 * p.pW - p.dW * (p.kW - 1) - 1) / p.sW) + 1;
          fc.pre(Ho >= 1 && Wo >= 1);
          await checkCase({ x: [p.N, p.G * p.Cg, p.H, p.W], w: [p.G * p.Og, p.Cg, p.kH, p.kW], opts }, p.seed);
        },
      ),
      { numRuns: 20 },
    );
  });

  it('a larger batch exercises the split filter-gradient reduction', async () => {
    await checkCase({ x: [16, 3, 14, 14], w: [8, 3, 3, 3], opts: { padding: 1 } }, 5);
  });
});

describe('conv2d validation', () => {
  it('errors show the shapes', () => {
    const x = up(rand([1, 4, 5, 5], 1));
    const w = up(rand([2, 3, 3, 3], 2));
    expect(() => conv2d(x, w)).toThrow(/\[1, 4, 5, 5\].*\[2, 3, 3, 3\]/);
    const w2 = up(rand([2, 4, 7, 7], 3));
    expect(() => conv2d(x, w2)).toThrow(ShapeError);
    const w3 = up(rand([2, 4, 3, 3], 4));
    const gy = up(rand([1, 2, 4, 4], 5));
    expect(() => conv2dInputGrad(gy, w3, [1, 4, 5, 5])).toThrow(/\[1, 2, 4, 4\].*\[1, 2, 3, 3\]/);
    const xi = tensor(new Int32Array(100), [1, 4, 5, 5], 'i32');
    expect(() => conv2d(xi, w3)).toThrow(DTypeError);
    [x, w, w2, w3, gy, xi].forEach((t) => t.dispose());
    expect(device.memory().liveTensors).toBe(0);
  });
});
