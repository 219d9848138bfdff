/** @file Reference counter-based RNG: Philox4x32-10 and the exact uniform/normal/… derivations of OPS.md. */

import { InvalidArgumentError } from '../errors';
import { type RefTensor, checkShape, sizeOf } from './types';

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;
const TWO_M24 = 2 ** -24;

/**
 * High 32 bits of the 64-bit product of two u32s. A float64 product of two u32s is not exact, so the
 * product is assembled from 16-bit halves (each partial product < 2^32 is exact), the same way the
 * WGSL kernel must do it since WGSL has no 64-bit integers.
 */
export function mulhi32(a: number, b: number): number {
  const aL = a & 0xffff;
  const aH = a >>> 16;
  const bL = b & 0xffff;
  const bH = b >>> 16;
  const ll = aL * bL;
  const lh = aL * bH;
  const hl = aH * bL;
  const hh = aH * bH;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) >>> 0;
}

/** Philox4x32-10 (Salmon et al. 2011, Random123): 10 rounds, key bumped by the Weyl constants between rounds. */
export function philox4x32(counter: readonly [number, number, number, number], key: readonly [number, number]): [number, number, number, number] {
  let c0 = counter[0] >>> 0;
  let c1 = counter[1] >>> 0;
  let c2 = counter[2] >>> 0;
  let c3 = counter[3] >>> 0;
  let k0 = key[0] >>> 0;
  let k1 = key[1] >>> 0;
  for (let r = 0; r < 10; r++) {
    const hi0 = mulhi32(M0, c0);
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi1 = mulhi32(M1, c2);
    const lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  return [c0, c1, c2, c3];
}

/** A seed is a non-negative integer below 2^53 (split into lo/hi u32 words) or an explicit [lo, hi] pair. */
export type Seed = number | readonly [number, number];

export interface RandomOptions {
  /** Second counter word: lets one seed produce independent streams (e.g. per training step). */
  offset?: number;
}

/** Splits a seed into the Philox key (seedLo, seedHi). */
export function seedKey(seed: Seed): [number, number] {
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new InvalidArgumentError(`seed must be a non-negative safe integer, got ${seed}`);
    return [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0];
  }
  if (!seed.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32)) {
    throw new InvalidArgumentError(`seed pair must be two u32 words, got [${seed.join(', ')}]`);
  }
  return [seed[0], seed[1]];
}

function checkOffset(offset: number): number {
  if (!Number.isInteger(offset) || offset < 0 || offset >= 2 ** 32) throw new InvalidArgumentError(`offset must be a u32, got ${offset}`);
  return offset;
}

/** Philox words of every element: element i uses counter (i, offset, 0, 0). */
function words(n: number, seed: Seed, offset: number): Array<[number, number, number, number]> {
  const key = seedKey(seed);
  const off = checkOffset(offset);
  if (n > 2 ** 32) throw new InvalidArgumentError(`random tensors are limited to 2^32 elements, got ${n}`);
  const out = new Array<[number, number, number, number]>(n);
  for (let i = 0; i < n; i++) out[i] = philox4x32([i, off, 0, 0], key);
  return out;
}

/** The raw u32 word 0 per element (exposed so GPU tests can compare bits before any float conversion). */
export function randomBits(shape: readonly number[], seed: Seed, opts: RandomOptions = {}): RefTensor {
  checkShape(shape);
  const w = words(sizeOf(shape), seed, opts.offset ?? 0);
  return { shape: [...shape], data: Float64Array.from(w, (x) => x[0]) };
}

/** The 24-bit uniform in [0, 1) from one word; exact in f32, so GPU and reference agree bit for bit. */
function unit(w: number): number {
  return (w >>> 8) * TWO_M24;
}

/**
 * low + (high − low)·u evaluated in f32 step by step, as the kernel does. With the defaults (0, 1) every
 * step is exact. For other bounds a kernel compiled with FMA contraction may differ by 1 ulp.
 */
export function uniform(shape: readonly number[], seed: Seed, opts: RandomOptions & { low?: number; high?: number } = {}): RefTensor {
  const f = Math.fround;
  const low = f(opts.low ?? 0);
  const span = f(f(opts.high ?? 1) - low);
  const bits = randomBits(shape, seed, opts);
  return { shape: bits.shape, data: bits.data.map((w) => f(low + f(span * unit(w)))) };
}

/**
 * Box–Muller from words 0 and 1 of the same counter. u1 ∈ (0, 1] so the log is finite. Transcendentals are
 * evaluated in float64 from the exact f32 inputs and rounded to f32 once; GPU log/cos are not correctly
 * rounded, so compare GPU normals with a tolerance (a few f32 ulps scaled by |z|).
 */
export function normal(shape: readonly number[], seed: Seed, opts: RandomOptions & { mean?: number; std?: number } = {}): RefTensor {
  checkShape(shape);
  const mean = opts.mean ?? 0;
  const std = opts.std ?? 1;
  const w = words(sizeOf(shape), seed, opts.offset ?? 0);
  const data = new Float64Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const u1 = ((w[i][0] >>> 8) + 1) * TWO_M24;
    const u2 = (w[i][1] >>> 8) * TWO_M24;
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    data[i] = Math.fround(mean + std * z);
  }
  return { shape: [...shape], data };
}

/** ±1 from the low bit of word 0. */
export function rademacher(shape: readonly number[], seed: Seed, opts: RandomOptions = {}): RefTensor {
  const bits = randomBits(shape, seed, opts);
  return { shape: bits.shape, data: bits.data.map((w) => (w & 1 ? 1 : -1)) };
}

/** 1 where u < p (p taken as f32, as the kernel receives it), else 0. */
export function bernoulli(shape: readonly number[], seed: Seed, p: number, opts: RandomOptions = {}): RefTensor {
  if (!(p >= 0 && p <= 1)) throw new InvalidArgumentError(`bernoulli: p must be in [0, 1], got ${p}`);
  const pf = Math.fround(p);
  const bits = randomBits(shape, seed, opts);
  return { shape: bits.shape, data: bits.data.map((w) => (unit(w) < pf ? 1 : 0)) };
}

/** low + (w0 mod (high − low)) as i32; the modulo is a u32 remainder (slightly biased, by contract). */
export function randint(shape: readonly number[], seed: Seed, low: number, high: number, opts: RandomOptions = {}): RefTensor {
  const i32ok = (v: number) => Number.isInteger(v) && v >= -(2 ** 31) && v <= 2 ** 31 - 1;
  if (!i32ok(low) || !i32ok(high) || high <= low) {
    throw new InvalidArgumentError(`randint: need i32 bounds with low < high, got low=${low} high=${high}`);
  }
  const range = high - low;
  const bits = randomBits(shape, seed, opts);
  return { shape: bits.shape, data: bits.data.map((w) => low + (w % range)) };
}

/** A permutation of 0..n−1: argsort of the word-0 keys, ties broken by index (a stable sort). */
export function permutation(n: number, seed: Seed, opts: RandomOptions = {}): RefTensor {
  checkShape([n], 'permutation length');
  const keys = randomBits([n], seed, opts).data;
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => keys[a] - keys[b] || a - b);
  return { shape: [n], data: Float64Array.from(idx) };
}
