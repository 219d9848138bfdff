/** @file Basic kernels: fill a buffer with a constant, and axpy (y = a·x + y) used by the self-test and optimisers. */
import { memoKernel } from './render';
import { grid1d, type DType, type KernelSpec } from './types';

export const LINEAR_WG = 256;

const basicCache = new Map<string, KernelSpec>();

/** Dispatch size for a kernel that handles `perInvocation` elements in each of LINEAR_WG invocations. */
export function linearDispatch(elements: number, perInvocation = 1, wg = LINEAR_WG): [number, number, number] {
  return grid1d(Math.ceil(elements / (perInvocation * wg)));
}

export interface FillKey {
  dtype: DType;
}

/** out[i] = value for i < n. Uniform: { n: u32, value: bits as u32 }. */
export function fillKernel(key: FillKey): KernelSpec {
  return memoKernel(basicCache, `fill:${key.dtype}`, () => ({
    name: `fill:${key.dtype}`,
    inputs: [],
    outputs: [{ name: 'out', dtype: key.dtype }],
    uniforms: [
      ['n', 'u32'],
      ['bits', 'u32'],
    ],
    workgroupSize: LINEAR_WG,
    body: `if (gi >= u.n) { return; }
  out[gi] = bitcast<${key.dtype}>(u.bits);`,
  }));
}

/** y[i] = a * x[i] + y[i] (f32), y updated in place. Uniform: { n: u32, a: f32 }. */
export function axpyKernel(): KernelSpec {
  return memoKernel(basicCache, 'axpy:f32', () => ({
    name: 'axpy:f32',
    inputs: [
      { name: 'x', dtype: 'f32' },
      { name: 'y', dtype: 'f32', access: 'read_write' },
    ],
    outputs: [],
    uniforms: [
      ['n', 'u32'],
      ['a', 'f32'],
    ],
    workgroupSize: LINEAR_WG,
    body: `if (gi >= u.n) { return; }
  y[gi] = u.a * x[gi] + y[gi];`,
  }));
}
