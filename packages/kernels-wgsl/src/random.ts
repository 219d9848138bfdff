/** @file WGSL generators for counter-based random numbers (Philox4x32-10) and the bitonic argsort behind permutation. */
import { BUILTINS, LINEAR_WG, linearIndex } from './basic';
import { WGSL_MATH } from './wgsl-math';
import type { KernelSpec } from './types';

export const RANDOM_OP_NAMES = ['bits', 'uniform', 'normal', 'rademacher', 'bernoulli', 'randint'] as const;
export type RandomOpName = (typeof RANDOM_OP_NAMES)[number];

/** Output dtype of each random kernel. */
export const RANDOM_OUTPUT_DTYPE = { bits: 'u32', uniform: 'f32', normal: 'f32', rademacher: 'f32', bernoulli: 'f32', randint: 'i32' } as const;

/**
 * Philox4x32-10 (Salmon et al. 2011). WGSL has no 64-bit integers, so the high word of each 32×32 product is
 * assembled from 16-bit halves, exactly as the reference does.
 */
export const WGSL_PHILOX = /* wgsl */ `
fn mg_mulhi(a: u32, b: u32) -> u32 {
  let aL = a & 0xffffu; let aH = a >> 16u; let bL = b & 0xffffu; let bH = b >> 16u;
  let ll = aL * bL; let lh = aL * bH; let hl = aH * bL; let hh = aH * bH;
  let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return hh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
}
fn mg_philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var r = 0u; r < 10u; r++) {
    let hi0 = mg_mulhi(0xd2511f53u, c.x);
    let lo0 = 0xd2511f53u * c.x;
    let hi1 = mg_mulhi(0xcd9e8d57u, c.z);
    let lo1 = 0xcd9e8d57u * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k = k + vec2<u32>(0x9e3779b9u, 0xbb67ae85u);
  }
  return c;
}
`;

const TWO_M24 = '5.9604644775390625e-8';

/**
 * cos(2π u) for u ∈ [0, 1) a multiple of 2⁻²⁴, without the GPU's cos: Vulkan only requires 2⁻¹¹ absolute
 * accuracy on [−π, π] and SwiftShader's is ~1.9e-4 off. u = q/4 + t with q = round(4u) and |t| ≤ 1/8 is exact in
 * f32 (both terms are multiples of 2⁻²⁴), so the quadrant is exact and the Taylor series of cos/sin on
 * |2πt| ≤ π/4 (truncation < 2e-10) leaves only a few f32 roundings.
 */
export const WGSL_COS_2PI = /* wgsl */ `
fn mg_cos2pi(u: f32) -> f32 {
  let q = round(4.0 * u);
  let x = 6.283185307179586 * (u - 0.25 * q);
  let x2 = x * x;
  let c = 1.0 - x2 * (1.0 / 2.0 - x2 * (1.0 / 24.0 - x2 * (1.0 / 720.0 - x2 * (1.0 / 40320.0 - x2 * (1.0 / 3628800.0)))));
  let s = x * (1.0 - x2 * (1.0 / 6.0 - x2 * (1.0 / 120.0 - x2 * (1.0 / 5040.0 - x2 * (1.0 / 362880.0 - x2 * (1.0 / 39916800.0))))));
  switch (u32(q) & 3u) {
    case 0u: { return c; }
    case 1u: { return -s; }
    case 2u: { return -c; }
    default: { return s; }
  }
}
`;

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
  const out = RANDOM_OUTPUT_DTYPE[key.op];
  return {
    key: `random:${key.op}`,
    entryPoint: 'main',
    bindings: ['write', 'uniform'],
    workgroupSize: [LINEAR_WG, 1, 1],
    code: `${WGSL_MATH}${WGSL_PHILOX}
struct U { n: u32, offset: u32, seedLo: u32, seedHi: u32, a: f32, b: f32, lowBits: i32, range: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<${out}>;
@group(0) @binding(1) var<uniform> u: U;
${WGSL_COS_2PI}
fn normalValue(w: vec4<u32>) -> f32 {
  let u1 = f32((w.x >> 8u) + 1u) * ${TWO_M24};
  let u2 = f32(w.y >> 8u) * ${TWO_M24};
  // u1 ∈ (0, 1]: log via log1p(u1 − 1) near 1 (exact argument), where GPU log only has absolute accuracy.
  let lg = select(log(u1), mg_log1p(u1 - 1.0), u1 > 0.5);
  let z = sqrt(-2.0 * lg) * mg_cos2pi(u2);
  return u.a + u.b * z;
}
@compute @workgroup_size(${LINEAR_WG})
fn main(${BUILTINS}) {
  ${linearIndex()}
  if (gi >= u.n) { return; }
  let w = mg_philox(vec4<u32>(gi, u.offset, 0u, 0u), vec2<u32>(u.seedLo, u.seedHi));
  out[gi] = ${transform(key.op)};
}`,
  };
}

/**
 * First step of permutation: pairs (key = Philox word 0, index) for i < n, padded to a power of two with
 * (0xffffffff, i) so padding sorts last. Uniform: { n, offset, seedLo, seedHi, length }. Bindings: pairs, uniform.
 */
export function permutationKeysKernel(): KernelSpec {
  return {
    key: 'random:permkeys',
    entryPoint: 'main',
    bindings: ['write', 'uniform'],
    workgroupSize: [LINEAR_WG, 1, 1],
    code: `${WGSL_PHILOX}
struct U { n: u32, offset: u32, seedLo: u32, seedHi: u32, length: u32 }
@group(0) @binding(0) var<storage, read_write> pairs: array<vec2<u32>>;
@group(0) @binding(1) var<uniform> u: U;
@compute @workgroup_size(${LINEAR_WG})
fn main(${BUILTINS}) {
  ${linearIndex()}
  if (gi >= u.length) { return; }
  var k = 0xffffffffu;
  if (gi < u.n) { k = mg_philox(vec4<u32>(gi, u.offset, 0u, 0u), vec2<u32>(u.seedLo, u.seedHi)).x; }
  pairs[gi] = vec2<u32>(k, gi);
}`,
  };
}

/**
 * One compare-exchange step of a bitonic sort of (key, index) pairs (lexicographic, so the result is the
 * stable argsort). Uniform: { j, k, half }: invocation t < half compares i and i + j. Bindings: pairs, uniform.
 */
export function bitonicStepKernel(): KernelSpec {
  return {
    key: 'random:bitonic',
    entryPoint: 'main',
    bindings: ['write', 'uniform'],
    workgroupSize: [LINEAR_WG, 1, 1],
    code: `
struct U { j: u32, k: u32, half: u32 }
@group(0) @binding(0) var<storage, read_write> pairs: array<vec2<u32>>;
@group(0) @binding(1) var<uniform> u: U;
@compute @workgroup_size(${LINEAR_WG})
fn main(${BUILTINS}) {
  ${linearIndex()}
  if (gi >= u.half) { return; }
  let i = ((gi & ~(u.j - 1u)) << 1u) | (gi & (u.j - 1u));
  let l = i + u.j;
  let a = pairs[i];
  let b = pairs[l];
  let aAfterB = a.x > b.x || (a.x == b.x && a.y > b.y);
  if (aAfterB == ((i & u.k) == 0u)) {
    pairs[i] = b;
    pairs[l] = a;
  }
}`,
  };
}

/** Last step of permutation: out[i] = i32(index of pair i). Uniform: { n }. Bindings: pairs (read), out, uniform. */
export function permutationIndicesKernel(): KernelSpec {
  return {
    key: 'random:permindices',
    entryPoint: 'main',
    bindings: ['read', 'write', 'uniform'],
    workgroupSize: [LINEAR_WG, 1, 1],
    code: `
struct U { n: u32 }
@group(0) @binding(0) var<storage, read> pairs: array<vec2<u32>>;
@group(0) @binding(1) var<storage, read_write> out: array<i32>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(${LINEAR_WG})
fn main(${BUILTINS}) {
  ${linearIndex()}
  if (gi >= u.n) { return; }
  out[gi] = i32(pairs[gi].y);
}`,
  };
}
