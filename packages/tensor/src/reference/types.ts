/** @file Float64 reference tensor type and the shape/stride/broadcast helpers every reference op shares. */

import { DTypeError, InvalidArgumentError, ShapeError } from '../errors';
import { show } from './args';

/** Element types of the engine; the reference stores all of them as float64 (integers stay integral). */
export type DType = 'f32' | 'i32' | 'u32';

/** A contiguous row-major tensor in float64: the test oracle's only data type. */
export interface RefTensor {
  shape: number[];
  data: Float64Array;
}

/** `[2, 3]` — the form every error message uses for shapes. */
export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Throws unless every dim is a non-negative integer (ops build shapes from user numbers). */
export function checkShape(shape: readonly number[], what = 'shape'): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`${what} ${shapeStr(shape)} has an invalid dim ${d}`);
  }
}

/** Number of elements; 1 for the scalar shape `[]`. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides in elements. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Builds a tensor, copying `data` so the caller's array can never alias the result. Shape defaults to 1-D. */
export function refTensor(data: ArrayLike<number>, shape?: readonly number[]): RefTensor {
  const sh = shape ? [...shape] : [data.length];
  checkShape(sh);
  if (sizeOf(sh) !== data.length) {
    throw new ShapeError(`refTensor: ${data.length} values do not fill shape ${shapeStr(sh)}`);
  }
  return { shape: sh, data: Float64Array.from(data) };
}

/** A tensor of the given shape filled with `value`. */
export function filled(shape: readonly number[], value: number): RefTensor {
  checkShape(shape);
  return { shape: [...shape], data: new Float64Array(sizeOf(shape)).fill(value) };
}

/** NumPy broadcasting of any number of shapes (trailing dims aligned, 1 stretches). */
export function broadcastShapes(...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i];
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else throw new ShapeError(`cannot broadcast shapes ${shapes.map(shapeStr).join(' and ')}`);
    }
  }
  return out;
}

/**
 * Strides that read `shape` as if it were broadcast to `outShape`: 0 on stretched and missing leading dims.
 * Assumes `shape` broadcasts to `outShape` (checked by the caller via broadcastShapes).
 */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const st = stridesOf(shape);
  const off = outShape.length - shape.length;
  return outShape.map((d, i) => {
    const j = i - off;
    if (j < 0) return 0;
    return shape[j] === 1 && d !== 1 ? 0 : st[j];
  });
}

/** Normalizes a possibly negative axis into [0, rank). */
export function normAxis(axis: number, rank: number, what = 'axis'): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    throw new ShapeError(`${what} ${axis} is out of range for a rank-${rank} tensor`);
  }
  return axis < 0 ? axis + rank : axis;
}

/**
 * Normalizes reduction axes: undefined means all, duplicates are an error, result sorted ascending.
 * A rank-0 tensor accepts axis 0/−1 (as torch does) and reduces over nothing.
 */
export function normAxes(axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  // A bare axis is one axis, as the raw ops read it; anything else that is not a list is a ShapeError, as there.
  if (typeof axes !== 'number' && !Array.isArray(axes)) throw new ShapeError(`axes must be a number or an array, got ${show(axes)}`);
  const list: readonly number[] = typeof axes === 'number' ? [axes] : axes;
  const seen = new Set<number>();
  for (const a of list) {
    const n = normAxis(a, Math.max(rank, 1));
    if (seen.has(n)) throw new ShapeError(`axis ${a} appears twice in axes [${list.join(', ')}]`);
    seen.add(n);
  }
  return [...seen].filter((a) => a < rank).sort((x, y) => x - y);
}

/** Multi-index of a flat row-major offset. */
export function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    idx[i] = flat % shape[i];
    flat = Math.floor(flat / shape[i]);
  }
  return idx;
}

/**
 * Walks every multi-index of `shape` in row-major order, keeping one running offset per stride set.
 * The callback gets the flat output index and the offsets array (read it immediately: it is reused).
 * This odometer avoids a div/mod per element and is the workhorse of broadcasting and permutation.
 */
export function forEachOffset(shape: readonly number[], strides: readonly (readonly number[])[], cb: (i: number, offs: number[]) => void): void {
  const rank = shape.length;
  const n = sizeOf(shape);
  const k = strides.length;
  const idx = new Array<number>(rank).fill(0);
  const offs = new Array<number>(k).fill(0);
  for (let i = 0; i < n; i++) {
    cb(i, offs);
    for (let d = rank - 1; d >= 0; d--) {
      idx[d]++;
      for (let j = 0; j < k; j++) offs[j] += strides[j][d];
      if (idx[d] < shape[d]) break;
      for (let j = 0; j < k; j++) offs[j] -= strides[j][d] * shape[d];
      idx[d] = 0;
    }
  }
}

/** Index tensors are i32 stored as float64: anything non-integral is a dtype mistake by the caller. */
export function checkIndexData(t: RefTensor, what: string): void {
  for (const v of t.data) {
    if (!Number.isInteger(v)) throw new DTypeError(`${what} must hold integers (i32), found ${v}`);
  }
}

/**
 * `n` or `[a, b]` → `[a, b]`, validated as integers ≥ `min`. Used by conv/pool option parsing. Anything else (null,
 * a string, a triple) is an InvalidArgumentError, as in the raw ops, not a TypeError from indexing it.
 */
export function pair(v: unknown, dflt: number, what: string, min: number): [number, number] {
  if (v !== undefined && typeof v !== 'number' && !(Array.isArray(v) && v.length === 2)) {
    throw new InvalidArgumentError(`${what} must be a number or a pair [h, w], got ${show(v)}`);
  }
  const p: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [(v as unknown[])[0] as number, (v as unknown[])[1] as number];
  if (!p.every((x) => Number.isInteger(x) && x >= min)) {
    throw new InvalidArgumentError(`${what} must be integers >= ${min}, got ${show(p)}`);
  }
  return p;
}

/** Rank check with the shape in the message. */
export function expectRank(t: RefTensor | readonly number[], rank: number, what: string): void {
  const shape = Array.isArray(t) ? (t as readonly number[]) : (t as RefTensor).shape;
  if (shape.length !== rank) throw new ShapeError(`${what} must be rank ${rank}, got shape ${shapeStr(shape)}`);
}
