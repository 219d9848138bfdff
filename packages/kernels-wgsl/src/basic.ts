/** @file Basic kernels: fill a buffer with a constant, and axpy (y = a·x + y) used by the self-test and optimisers. */
import { grid1d, type DType, type KernelSpec } from './types';

export const LINEAR_WG = 256;

/** Common prologue: recovers a linear invocation index from a 2-D grid of 1-D workgroups. */
export function linearIndex(wg = LINEAR_WG): string {
  return `let gi = wid.x * ${wg}u + lid.x + wid.y * nwg.x * ${wg}u;`;
}

export const BUILTINS = '@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>';

/** Dispatch size for a kernel that handles `perInvocation` elements in each of LINEAR_WG invocations. */
export function linearDispatch(elements: number, perInvocation = 1, wg = LINEAR_WG): [number, number, number] {
  return grid1d(Math.ceil(elements / (perInvocation * wg)));
}

export interface FillKey {
  dtype: DType;
}

/** out[i] = value for i < n. Uniform: { n: u32, value: bits as u32 }. */
export function fillKernel(key: FillKey): KernelSpec {
  return {
    key: `fill:${key.dtype}`,
    entryPoint: 'main',
    bindings: ['write', 'uniform'],
    workgroupSize: [LINEAR_WG, 1, 1],
    code: `
struct U { n: u32, bits: u32 }
@group(0) @binding(0) var<storage, read_write> out: array<${key.dtype}>;
@group(0) @binding(1) var<uniform> u: U;
@compute @workgroup_size(${LINEAR_WG})
fn main(${BUILTINS}) {
  ${linearIndex()}
  if (gi >= u.n) { return; }
  out[gi] = bitcast<${key.dtype}>(u.bits);
}`,
  };
}

/** y[i] = a * x[i] + y[i] (f32). Uniform: { n: u32, a: f32 }. */
export function axpyKernel(): KernelSpec {
  return {
    key: 'axpy:f32',
    entryPoint: 'main',
    bindings: ['read', 'write', 'uniform'],
    workgroupSize: [LINEAR_WG, 1, 1],
    code: `
struct U { n: u32, a: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> u: U;
@compute @workgroup_size(${LINEAR_WG})
fn main(${BUILTINS}) {
  ${linearIndex()}
  if (gi >= u.n) { return; }
  y[gi] = u.a * x[gi] + y[gi];
}`,
  };
}
