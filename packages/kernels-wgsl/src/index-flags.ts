/** @file The device's index-bounds flag: kernels that read user index tensors report out-of-range values into it. */
import { LINEAR_WG } from './basic';
import { memoKernel, type BufferParam } from './render';
import type { KernelSpec } from './types';

const flagCache = new Map<string, KernelSpec>();

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

/** The flag buffer as a kernel output: bound after the kernel's own outputs (read_write, atomic words). */
export const INDEX_FLAGS: BufferParam = { name: 'indexFlags', dtype: 'u32', atomic: true, length: INDEX_FLAG_WORDS };

/**
 * WGSL `reportBadIndex(value, bound, tag)` for kernels that bind INDEX_FLAGS. `opCode` may be a constant or a
 * WGSL expression (the standalone bounds kernel passes its uniform's field).
 */
export function reportBadIndexFn(opCode: number | string): string {
  const code = typeof opCode === 'number' ? `${opCode}u` : opCode;
  return `fn reportBadIndex(value: i32, bound: u32, tag: u32) {
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
  return memoKernel(flagCache, 'indexBounds', () => ({
    name: 'indexBounds',
    inputs: [{ name: 'index', dtype: 'i32' }],
    outputs: [INDEX_FLAGS],
    uniforms: ['n', 'bound', 'tag', 'opCode'].map((f) => [f, 'u32'] as const),
    workgroupSize: LINEAR_WG,
    functions: reportBadIndexFn('u.opCode'),
    body: `if (gi >= u.n) { return; }
  let k = index[gi];
  if (k < 0 || u32(k) >= u.bound) { reportBadIndex(k, u.bound, u.tag); }`,
  }));
}
