/** @file Shared helpers for the reference-op tests: deterministic random tensors, inner products, closeness. */

import { mulberry32 } from '../../packages/tensor/src/ops/util';
import { expect } from 'vitest';
import { type RefTensor, refTensor, sizeOf } from '../../packages/tensor/src/reference/index';

/** mulberry32: a tiny seeded PRNG so every test tensor is reproducible without touching the op under test. */
export const rng = mulberry32;

/** Uniform values in [−1, 1). */
export function rand(shape: number[], seed: number): RefTensor {
  const r = rng(seed);
  return refTensor(
    Array.from({ length: sizeOf(shape) }, () => 2 * r() - 1),
    shape,
  );
}

export function dot(a: RefTensor, b: RefTensor): number {
  expect(a.shape).toEqual(b.shape);
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += a.data[i] * b.data[i];
  return s;
}

/** Elementwise |a − b| ≤ atol + rtol·|b| with a readable failure. */
export function expectClose(a: RefTensor, b: RefTensor, rtol = 1e-12, atol = 1e-12): void {
  expect(a.shape).toEqual(b.shape);
  for (let i = 0; i < a.data.length; i++) {
    const x = a.data[i];
    const y = b.data[i];
    if (Number.isNaN(y)) {
      expect(x, `element ${i}`).toBeNaN();
      continue;
    }
    if (x === y) continue;
    const ok = Math.abs(x - y) <= atol + rtol * Math.abs(y);
    if (!ok) expect.fail(`element ${i}: got ${x}, want ${y} (shape [${a.shape}])`);
  }
}

export function expectRelClose(a: number, b: number, rtol = 1e-10): void {
  expect(Math.abs(a - b)).toBeLessThanOrEqual(rtol * Math.max(1, Math.abs(a), Math.abs(b)));
}

/** Shorthand for literal tensors in tests. */
export const T = (data: number[], shape?: number[]): RefTensor => refTensor(data, shape);
