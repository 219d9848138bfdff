/** @file The device's index-bounds flag: kernels that read user index tensors report out-of-range values into it. */
import { BUILTINS, linearIndex, LINEAR_WG } from './basic';
import type { KernelSpec } from './types';

/**
 * Words of the flag buffer: [count, tag, value, bound, opCode, 0, 0, 0]. `count` is how many out-of-range entries
 * were seen; the first reporter (the one whose atomicAdd saw 0) also stores the dispatch's tag, the offending
 * value (i32 bits), the bound and the op code. The host copies and clears the words with each readback.
 */
export const INDEX_FLAG_WORDS = 8;

/** Op codes stored in word 4, so the host can name the op even when the dispatch's tag is no longer known. */
export const INDEX_OP_CODES = { gather: 1, indexSelect: 2, scatterAdd: 3, oneHot: 4 } as const;
export type IndexCheckedOp = keyof typeof INDEX_OP_CODES;

/** The op name for an op code read back from the flag buffer ('an index op' if unknown). */
export function indexOpName(code: number): string {
  const hit = Object.entries(INDEX_OP_CODES).find(([, c]) => c === code);
  return hit ? hit[0] : 'an index op';
}

/**
 * WGSL declaring the flag buffer at `binding` and `reportBadIndex(value, bound, tag)`. `opCode` may be a constant
 * or a WGSL expression (the standalone bounds kernel passes its uniform's field).
 */
export function indexFlagsDecl(binding: number, opCode: number | string): string {
  const code = typeof opCode === 'number' ? `${opCode}u` : opCode;
  return `@group(0) @binding(${binding}) var<storage, read_write> indexFlags: array<atomic<u32>, ${INDEX_FLAG_WORDS}>;
fn reportBadIndex(value: i32, bound: u32, tag: u32) {
  if (atomicAdd(&indexFlags[0], 1u) == 0u) {
    atomicStore(&indexFlags[1], tag);
    atomicStore(&indexFlags[2], bitcast<u32>(value));
    atomicStore(&indexFlags[3], bound);
    atomicStore(&indexFlags[4], ${code});
  }
}`;
}

/**
 * Range-checks `n` i32 index values against [0, bound) without producing anything: for ops whose output is empty
 * although the index is not (indexSelect on x [0, 5]), so no gathering invocation would see the values.
 * Uniform: { n, bound, tag, opCode }.
 */
export function indexBoundsKernel(): KernelSpec {
  return {
    key: 'indexBounds',
    entryPoint: 'main',
    bindings: ['read', 'write', 'uniform'],
    workgroupSize: [LINEAR_WG, 1, 1],
    code: `
struct U { n: u32, bound: u32, tag: u32, opCode: u32 }
@group(0) @binding(0) var<storage, read> index: array<i32>;
${indexFlagsDecl(1, 'u.opCode')}
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(${LINEAR_WG})
fn main(${BUILTINS}) {
  ${linearIndex()}
  if (gi >= u.n) { return; }
  let k = index[gi];
  if (k < 0 || u32(k) >= u.bound) { reportBadIndex(k, u.bound, u.tag); }
}`,
  };
}
