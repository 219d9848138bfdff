/** @file WGSL generators for counter-based random numbers (Philox4x32-10) and the bitonic argsort behind permutation. */
import { LINEAR_WG } from './basic';
import { memoKernel, type BufferParam } from './render';
import type { KernelSpec } from './types';

export const RANDOM_OP_NAMES = ['bits', 'uniform', 'normal', 'rademacher', 'bernoulli', 'randint'] as const;
export type RandomOpName = (typeof RANDOM_OP_NAMES)[number];

/** Output dtype of each random kernel. */
export const RANDOM_OUTPUT_DTYPE = {
  bits: 'u32',
  uniform: 'f32',
  normal: 'f32',
  rademacher: 'f32',
  bernoulli: 'f32',
  randint: 'i32',
} as const;

const TWO_M24 = '5.9604644775390625e-8';

/** The counter-based draw's uniform prefix: element count, Philox counter offset and the 64-bit key. */
const SEED_FIELDS = (['n', 'offset', 'seedLo', 'seedHi'] as const).map((f) => [f, 'u32'] as const);
/** (key, index) pairs of the permutation's bitonic argsort. */
const PAIRS: BufferParam = { name: 'pairs', dtype: 'u32', vec: 2 };
const randomCache = new Map<string, KernelSpec>();

function transform(op: RandomOpName): string {
  switch (op) {
    case 'bits':
      return 'w.x';
    case 'uniform':
      return `u.a + u.b * (f32(w.x >> 8u) * ${TWO_M24})`;
    case 'normal':
      return `normalValue(w)`;
    case 'rademacher':
      return 'select(-1.0, 1.0, (w.x & 1u) == 1u)';
    case 'bernoulli':
      return `select(0.0, 1.0, f32(w.x >> 8u) * ${TWO_M24} < u.a)`;
    case 'randint':
      return 'bitcast<i32>(bitcast<u32>(u.lowBits) + w.x % u.range)';
  }
}

/**
 * Element i gets counter (i, offset, 0, 0) and key (seedLo, seedHi). Uniform: { n, offset, seedLo, seedHi,
 * a: f32, b: f32, lowBits: i32, range: u32 } where (a, b) is (low, high − low) for uniform, (mean, std) for
 * normal, (p, ·) for bernoulli; randint uses lowBits and range = high − low. Bindings: out, uniform.
 */
export function randomKernel(key: { op: RandomOpName }): KernelSpec {
  const name = `random:${key.op}`;
  return memoKernel(randomCache, name, () => ({
    name,
    inputs: [],
    outputs: [{ name: 'out', dtype: RANDOM_OUTPUT_DTYPE[key.op] }],
    uniforms: [...SEED_FIELDS, ['a', 'f32'], ['b', 'f32'], ['lowBits', 'i32'], ['range', 'u32']],
    workgroupSize: LINEAR_WG,
    functions: `fn normalValue(w: vec4<u32>) -> f32 {
  let u1 = f32((w.x >> 8u) + 1u) * ${TWO_M24};
  let u2 = f32(w.y >> 8u) * ${TWO_M24};
  // u1 ∈ (0, 1]: log via log1p(u1 − 1) near 1 (exact argument), where GPU log only has absolute accuracy.
  let lg = select(log(u1), mg_log1p(u1 - 1.0), u1 > 0.5);
  let z = sqrt(-2.0 * lg) * mg_cos2pi(u2);
  return u.a + u.b * z;
}`,
    body: `if (gi >= u.n) { return; }
  let w = mg_philox(vec4<u32>(gi, u.offset, 0u, 0u), vec2<u32>(u.seedLo, u.seedHi));
  out[gi] = ${transform(key.op)};`,
  }));
}

/**
 * First step of permutation: pairs (key = Philox word 0, index) for i < n, padded to a power of two with
 * (0xffffffff, i) so padding sorts last. Uniform: { n, offset, seedLo, seedHi, length }. Bindings: pairs, uniform.
 */
export function permutationKeysKernel(): KernelSpec {
  return memoKernel(randomCache, 'random:permkeys', () => ({
    name: 'random:permkeys',
    inputs: [],
    outputs: [PAIRS],
    uniforms: [...SEED_FIELDS, ['length', 'u32']],
    workgroupSize: LINEAR_WG,
    body: `if (gi >= u.length) { return; }
  var k = 0xffffffffu;
  if (gi < u.n) { k = mg_philox(vec4<u32>(gi, u.offset, 0u, 0u), vec2<u32>(u.seedLo, u.seedHi)).x; }
  pairs[gi] = vec2<u32>(k, gi);`,
  }));
}

/**
 * One compare-exchange step of a bitonic sort of (key, index) pairs (lexicographic, so the result is the
 * stable argsort). Uniform: { j, k, half }: invocation t < half compares i and i + j. Bindings: pairs, uniform.
 */
export function bitonicStepKernel(): KernelSpec {
  return memoKernel(randomCache, 'random:bitonic', () => ({
    name: 'random:bitonic',
    inputs: [],
    outputs: [PAIRS],
    uniforms: [
      ['j', 'u32'],
      ['k', 'u32'],
      ['half', 'u32'],
    ],
    workgroupSize: LINEAR_WG,
    body: `if (gi >= u.half) { return; }
  let i = ((gi & ~(u.j - 1u)) << 1u) | (gi & (u.j - 1u));
  let l = i + u.j;
  let a = pairs[i];
  let b = pairs[l];
  let aAfterB = a.x > b.x || (a.x == b.x && a.y > b.y);
  if (aAfterB == ((i & u.k) == 0u)) {
    pairs[i] = b;
    pairs[l] = a;
  }`,
  }));
}

/** Last step of permutation: out[i] = i32(index of pair i). Uniform: { n }. Bindings: pairs (read), out, uniform. */
export function permutationIndicesKernel(): KernelSpec {
  return memoKernel(randomCache, 'random:permindices', () => ({
    name: 'random:permindices',
    inputs: [PAIRS],
    outputs: [{ name: 'out', dtype: 'i32' }],
    uniforms: [['n', 'u32']],
    workgroupSize: LINEAR_WG,
    body: `if (gi >= u.n) { return; }
  out[gi] = i32(pairs[gi].y);`,
  }));
}
