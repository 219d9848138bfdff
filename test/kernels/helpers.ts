/** @file Shared helpers for GPU-vs-reference kernel tests: f32-exact random reference tensors, upload, download. */
import { mulberry32, sizeOf, tensor, type DType, type Tensor } from '@metagrad/tensor';
import type { RefTensor } from '../../packages/tensor/src/reference/index';

/** f32-exact random data in [lo, hi) (the reference then sees exactly what the GPU sees). */
export function randRef(shape: number[], seed: number, lo: number, hi: number): RefTensor {
  const r = mulberry32(seed);
  return { shape, data: Float64Array.from({ length: sizeOf(shape) }, () => Math.fround(lo + (hi - lo) * r())) };
}

/** The reference tensor as a tensor on the default device. */
export function upload(r: RefTensor, dtype: DType = 'f32'): Tensor {
  return tensor(r.data, r.shape, dtype);
}

/** Reads a tensor back as a float64 reference tensor and disposes it. */
export async function download(t: Tensor): Promise<RefTensor> {
  const data = Float64Array.from(await t.toArray());
  t.dispose();
  return { shape: [...t.shape], data };
}
