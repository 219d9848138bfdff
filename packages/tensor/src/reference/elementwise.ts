/** @file Reference elementwise ops: unary math, broadcasting binary/compare ops, where, cast. */

import { DTypeError, InvalidArgumentError, ShapeError } from '../errors';
import { show } from './args';
import { type DType, type RefTensor, broadcastShapes, broadcastStrides, forEachOffset, shapeStr } from './types';

/** Applies `f` to every element. */
export function mapUnary(x: RefTensor, f: (v: number) => number): RefTensor {
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < out.length; i++) out[i] = f(x.data[i]);
  return { shape: [...x.shape], data: out };
}

/** Applies `f` pairwise under NumPy broadcasting. */
export function mapBinary(a: RefTensor, b: RefTensor, f: (x: number, y: number) => number, op = 'binary op'): RefTensor {
  let shape: number[];
  try {
    shape = broadcastShapes(a.shape, b.shape);
  } catch {
    throw new ShapeError(`${op}: cannot broadcast ${shapeStr(a.shape)} with ${shapeStr(b.shape)}`);
  }
  const sa = broadcastStrides(a.shape, shape);
  const sb = broadcastStrides(b.shape, shape);
  const ad = a.data;
  const bd = b.data;
  const out = new Float64Array(shape.reduce((p, d) => p * d, 1));
  forEachOffset(shape, [sa, sb], (i, o) => {
    out[i] = f(ad[o[0]], bd[o[1]]);
  });
  return { shape, data: out };
}

// ---- unary -------------------------------------------------------------------------------------------

export const neg = (x: RefTensor): RefTensor => mapUnary(x, (v) => -v);
export const exp = (x: RefTensor): RefTensor => mapUnary(x, Math.exp);
export const log = (x: RefTensor): RefTensor => mapUnary(x, Math.log);
export const log1p = (x: RefTensor): RefTensor => mapUnary(x, Math.log1p);
export const expm1 = (x: RefTensor): RefTensor => mapUnary(x, Math.expm1);
export const sin = (x: RefTensor): RefTensor => mapUnary(x, Math.sin);
export const cos = (x: RefTensor): RefTensor => mapUnary(x, Math.cos);
export const tanh = (x: RefTensor): RefTensor => mapUnary(x, Math.tanh);
/** Stable: never evaluates exp of a large positive number, so no inf/inf = NaN for large |x|. */
export const sigmoid = (x: RefTensor): RefTensor => mapUnary(x, sigmoidValue);
export const sqrt = (x: RefTensor): RefTensor => mapUnary(x, Math.sqrt);
export const rsqrt = (x: RefTensor): RefTensor => mapUnary(x, (v) => 1 / Math.sqrt(v));
export const recip = (x: RefTensor): RefTensor => mapUnary(x, (v) => 1 / v);
export const abs = (x: RefTensor): RefTensor => mapUnary(x, Math.abs);
/** sign(±0) = 0 (Math.sign would give −0 for −0), NaN stays NaN. */
export const sign = (x: RefTensor): RefTensor => mapUnary(x, (v) => (v > 0 ? 1 : v < 0 ? -1 : v === 0 ? 0 : v));
/** max(x, 0); NaN propagates as in torch. */
export const relu = (x: RefTensor): RefTensor => mapUnary(x, (v) => (v > 0 ? v : v === v ? 0 : v));
export const square = (x: RefTensor): RefTensor => mapUnary(x, (v) => v * v);
export const floor = (x: RefTensor): RefTensor => mapUnary(x, Math.floor);

export function sigmoidValue(v: number): number {
  if (v >= 0) return 1 / (1 + Math.exp(-v));
  const e = Math.exp(v);
  return e / (1 + e);
}

/** Table of the unary ops by their OPS.md name, for table-driven GPU-vs-reference tests. */
export const UNARY_OPS = {
  neg,
  exp,
  log,
  log1p,
  expm1,
  sin,
  cos,
  tanh,
  sigmoid,
  sqrt,
  rsqrt,
  recip,
  abs,
  sign,
  relu,
  square,
  floor,
} as const;
export type UnaryOpName = keyof typeof UNARY_OPS;

// ---- binary ------------------------------------------------------------------------------------------

/**
 * The contract's pow: x>0 → exp(y·ln x) (computed as Math.pow for accuracy), x=0 → 0 for y>0 (and 1 for
 * y=0, +inf for y<0, as torch), x<0 → |x|^y·(−1)^y only for integer y, else NaN.
 */
export function powValue(x: number, y: number): number {
  if (Number.isNaN(x) || Number.isNaN(y)) return NaN;
  if (x > 0) return x ** y;
  if (x === 0) return y > 0 ? 0 : y === 0 ? 1 : Infinity;
  if (!Number.isInteger(y)) return NaN;
  const m = (-x) ** y;
  return Math.abs(y) % 2 === 1 ? -m : m;
}

/** max/min propagate NaN (torch.maximum semantics); GPU kernels must select NaN explicitly to match. */
function maxScalar(x: number, y: number): number {
  return x !== x || y !== y ? NaN : Math.max(x, y);
}
function minScalar(x: number, y: number): number {
  return x !== x || y !== y ? NaN : Math.min(x, y);
}

export const add = (a: RefTensor, b: RefTensor): RefTensor => mapBinary(a, b, (x, y) => x + y, 'add');
/** relu's VJP: gy where x > 0, else 0. */
export const reluGrad = (gy: RefTensor, x: RefTensor): RefTensor => mapBinary(gy, x, (g, v) => (v > 0 ? g : 0), 'reluGrad');
/** a·x + b·y (the reference of the fused axpby; shapes must broadcast like add's). */
export const axpby = (a: number, x: RefTensor, b: number, y: RefTensor): RefTensor => (
  scalar('axpby', 'a', a), scalar('axpby', 'b', b), mapBinary(x, y, (u, v) => a * u + b * v, 'axpby')
);
export const sub = (a: RefTensor, b: RefTensor): RefTensor => mapBinary(a, b, (x, y) => x - y, 'sub');
export const mul = (a: RefTensor, b: RefTensor): RefTensor => mapBinary(a, b, (x, y) => x * y, 'mul');
export const div = (a: RefTensor, b: RefTensor): RefTensor => mapBinary(a, b, (x, y) => x / y, 'div');
export const pow = (a: RefTensor, b: RefTensor): RefTensor => mapBinary(a, b, powValue, 'pow');
export const maximum = (a: RefTensor, b: RefTensor): RefTensor => mapBinary(a, b, maxScalar, 'maximum');
export const minimum = (a: RefTensor, b: RefTensor): RefTensor => mapBinary(a, b, minScalar, 'minimum');

/** A scalar operand must be a JS number, as in the raw ops ('2' would be concatenated by + and coerced by ·). */
function scalar(op: string, what: string, s: unknown): number {
  if (typeof s !== 'number') throw new InvalidArgumentError(`${op}: ${what} must be a number, got ${show(s)}`);
  return s;
}

export const addScalar = (x: RefTensor, s: number): RefTensor => (scalar('addScalar', 'scalar', s), mapUnary(x, (v) => v + s));
export const mulScalar = (x: RefTensor, s: number): RefTensor => (scalar('mulScalar', 'scalar', s), mapUnary(x, (v) => v * s));
export const powScalar = (x: RefTensor, s: number): RefTensor => (scalar('powScalar', 'scalar', s), mapUnary(x, (v) => powValue(v, s)));

export const BINARY_OPS = { add, sub, mul, div, pow, maximum, minimum } as const;
export type BinaryOpName = keyof typeof BINARY_OPS;

// ---- compare (f32 0/1 masks; NaN compares false except ne, as IEEE) -----------------------------------

export const eq = (a: RefTensor, b: RefTensor): RefTensor => mapBinary(a, b, (x, y) => +(x === y), 'eq');
export const ne = (a: RefTensor, b: RefTensor): RefTensor => mapBinary(a, b, (x, y) => +(x !== y), 'ne');
export const lt = (a: RefTensor, b: RefTensor): RefTensor => mapBinary(a, b, (x, y) => +(x < y), 'lt');
export const le = (a: RefTensor, b: RefTensor): RefTensor => mapBinary(a, b, (x, y) => +(x <= y), 'le');
export const gt = (a: RefTensor, b: RefTensor): RefTensor => mapBinary(a, b, (x, y) => +(x > y), 'gt');
export const ge = (a: RefTensor, b: RefTensor): RefTensor => mapBinary(a, b, (x, y) => +(x >= y), 'ge');

export const COMPARE_OPS = { eq, ne, lt, le, gt, ge } as const;
export type CompareOpName = keyof typeof COMPARE_OPS;

/** where(cond, a, b) with all three broadcast together; cond is true when nonzero (NaN counts as true). */
export function where(cond: RefTensor, a: RefTensor, b: RefTensor): RefTensor {
  let shape: number[];
  try {
    shape = broadcastShapes(cond.shape, a.shape, b.shape);
  } catch {
    throw new ShapeError(`where: cannot broadcast ${shapeStr(cond.shape)}, ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
  }
  const out = new Float64Array(shape.reduce((p, d) => p * d, 1));
  const st = [cond, a, b].map((t) => broadcastStrides(t.shape, shape));
  forEachOffset(shape, st, (i, o) => {
    out[i] = cond.data[o[0]] !== 0 ? a.data[o[1]] : b.data[o[2]];
  });
  return { shape, data: out };
}

const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;

/**
 * cast(x, to, from='f32'). Float → int truncates toward zero and saturates at the target range with
 * NaN → 0 (WGSL's float→int conversion rule); i32 ↔ u32 reinterprets the bits (WGSL bitcast semantics of
 * `u32(i)` / `i32(u)`); int → f32 rounds to the nearest f32.
 */
export function cast(x: RefTensor, to: DType, from: DType = 'f32'): RefTensor {
  const conv = castScalar(from, to);
  return mapUnary(x, conv);
}

function castScalar(from: DType, to: DType): (v: number) => number {
  const known = ['f32', 'i32', 'u32'];
  if (!known.includes(from) || !known.includes(to)) throw new DTypeError(`cast: unsupported dtypes ${from} → ${to}`);
  if (to === 'f32') return Math.fround;
  if (from === 'f32') {
    const [lo, hi] = to === 'i32' ? [I32_MIN, I32_MAX] : [0, 2 ** 32 - 1];
    return (v) => (v !== v ? 0 : Math.min(hi, Math.max(lo, Math.trunc(v))));
  }
  return to === 'i32' ? (v) => v | 0 : (v) => v >>> 0;
}
