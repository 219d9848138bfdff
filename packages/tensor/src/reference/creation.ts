/** @file Reference creation ops: tensor, zeros, ones, full, arange, eye. */

import { DTypeError, InvalidArgumentError, ShapeError } from '../errors';
import { type DType, type RefTensor, checkShape, filled, shapeStr, sizeOf } from './types';

/**
 * Converts a number to what a `dtype` element would hold: f32 rounds to single precision (so a reference
 * built with dtype 'f32' holds exactly what the GPU buffer would), i32/u32 truncate toward zero and wrap.
 */
export function toDTypeValue(v: number, dtype: DType): number {
  switch (dtype) {
    case 'f32':
      return Math.fround(v);
    case 'i32':
      return Math.trunc(v) | 0;
    case 'u32':
      return Math.trunc(v) >>> 0;
    default:
      throw new DTypeError(`unknown dtype ${String(dtype)}`);
  }
}

type NumericArray = ArrayLike<number>;

/**
 * A tensor from flat data. Without `dtype` values are kept at full float64 precision (the oracle's
 * default); with one they are converted as the GPU upload would.
 */
export function tensor(data: NumericArray, shape?: readonly number[], dtype?: DType): RefTensor {
  const sh = shape ? [...shape] : [data.length];
  checkShape(sh);
  if (sizeOf(sh) !== data.length) throw new ShapeError(`tensor: ${data.length} values do not fill shape ${shapeStr(sh)}`);
  const out = Float64Array.from(data);
  if (dtype !== undefined) for (let i = 0; i < out.length; i++) out[i] = toDTypeValue(out[i], dtype);
  return { shape: sh, data: out };
}

export function zeros(shape: readonly number[], _dtype: DType = 'f32'): RefTensor {
  return filled(shape, 0);
}

export function ones(shape: readonly number[], _dtype: DType = 'f32'): RefTensor {
  return filled(shape, 1);
}

/** `full(shape, value, dtype?)`; the value is converted to the dtype only when a dtype is given. */
export function full(shape: readonly number[], value: number, dtype?: DType): RefTensor {
  return filled(shape, dtype === undefined ? value : toDTypeValue(value, dtype));
}

/**
 * torch.arange: `arange(stop)` or `arange(start, stop, step)`; length ceil((stop−start)/step),
 * element i = start + i·step (computed per element, not accumulated, so no drift).
 */
export function arange(start: number, stop?: number, step = 1, dtype?: DType): RefTensor {
  if (stop === undefined) {
    stop = start;
    start = 0;
  }
  if (step === 0 || !Number.isFinite(step) || !Number.isFinite(start) || !Number.isFinite(stop)) {
    throw new InvalidArgumentError(`arange: invalid range start=${start} stop=${stop} step=${step}`);
  }
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = dtype === undefined ? start + i * step : toDTypeValue(start + i * step, dtype);
  return { shape: [n], data };
}

/** Identity `[n, m]` (m defaults to n): ones on the main diagonal. */
export function eye(n: number, m: number = n): RefTensor {
  checkShape([n, m], 'eye shape');
  const data = new Float64Array(n * m);
  for (let i = 0; i < Math.min(n, m); i++) data[i * m + i] = 1;
  return { shape: [n, m], data };
}
