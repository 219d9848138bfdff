/** @file Shared helpers for autograd tests: seeded reference inputs and a first+second order check per op. */
import { mulberry32 } from '@metagrad/tensor';
import { expect } from 'vitest';
import * as ag from '@metagrad/autograd';
import type { CheckInput, CheckedFunction, GradcheckOptions } from '@metagrad/autograd';

export type { CheckInput, CheckedFunction };

const rng = mulberry32;

export interface RandOptions {
  lo?: number;
  hi?: number;
  /** Keep |value| at least this far from 0 (kinks of relu, abs, sign). */
  awayFromZero?: number;
}

/** Seeded uniform f32 inputs in [lo, hi). */
export function rand(shape: number[], seed: number, opts: RandOptions = {}): CheckInput {
  const { lo = -1, hi = 1, awayFromZero = 0 } = opts;
  const next = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = Float64Array.from({ length: n }, () => {
    let v = lo + (hi - lo) * next();
    if (Math.abs(v) < awayFromZero) v = v < 0 ? v - awayFromZero : v + awayFromZero;
    return v;
  });
  return { shape, data };
}

/** Distinct values (no ties for max/min/pooling), shuffled deterministically, spaced by `gap`. */
export function distinct(shape: number[], seed: number, gap = 0.1): CheckInput {
  const next = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const order = Array.from({ length: n }, (_, i) => i).sort(() => next() - 0.5);
  return { shape, data: Float64Array.from(order, (k) => (k - n / 2) * gap) };
}

export function ints(shape: number[], seed: number, lo: number, hi: number): CheckInput {
  const next = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return { shape, data: Float64Array.from({ length: n }, () => lo + Math.floor(next() * (hi - lo))), dtype: 'i32' };
}

export interface OpCase {
  name: string;
  f: CheckedFunction;
  inputs: CheckInput[];
  opts?: GradcheckOptions;
  /** Skip the second-order check (ops whose second derivative is not defined by the reference). */
  firstOrderOnly?: boolean;
}

/** gradcheck and gradgradcheck, with the failure messages in the assertion. */
export async function checkOp(c: OpCase): Promise<void> {
  const first = await ag.gradcheck(c.f, c.inputs, { ...c.opts, raise: false });
  expect(first.failures, `${c.name} first order`).toEqual([]);
  if (c.firstOrderOnly) return;
  const second = await ag.gradgradcheck(c.f, c.inputs, { ...c.opts, raise: false });
  expect(second.failures, `${c.name} second order`).toEqual([]);
}
