/** @file The contract between kernel generators and the device runtime: a kernel is WGSL plus its binding layout. */

/** How a binding is declared in WGSL: read-only storage, read-write storage, or a uniform block. */
export type BindingKind = 'read' | 'write' | 'uniform';

/**
 * A compiled-kernel description produced by a generator from a structural key.
 * `key` is derived from the same typed key that produced `code`, so the pipeline cache key and the source
 * can never drift apart. Bindings are numbered 0..n-1 in group 0 in the order given.
 */
export interface KernelSpec {
  /** Structural cache key, e.g. `binary:add:f32:r3:bcast`. Also the label in error messages. */
  readonly key: string;
  readonly code: string;
  readonly entryPoint: string;
  readonly bindings: readonly BindingKind[];
  readonly workgroupSize: readonly [number, number, number];
}

/** WGSL element type for a metagrad dtype. */
export type DType = 'f32' | 'i32' | 'u32';

export function wgslType(dtype: DType): string {
  return dtype;
}

/** Maximum workgroups per grid dimension guaranteed by WebGPU (and enforced silently by Dawn). */
export const MAX_WORKGROUPS_PER_DIM = 65535;

/**
 * Splits `count` workgroups into a 2-D grid that stays under the per-dimension limit.
 * Kernels recover the linear workgroup index as `wid.x + wid.y * nwg.x` and must bounds-check.
 */
export function grid1d(count: number): [number, number, number] {
  if (count <= MAX_WORKGROUPS_PER_DIM) return [Math.max(1, count), 1, 1];
  const y = Math.ceil(count / MAX_WORKGROUPS_PER_DIM);
  const x = Math.ceil(count / y);
  return [x, y, 1];
}

/** WGSL statement recovering the linear invocation index `gi` from a grid1d dispatch of `wg`-wide workgroups. */
export function gridLinearIndex(wg: number): string {
  return `let gi = wid.x * ${wg}u + lid.x + wid.y * nwg.x * ${wg}u;`;
}
