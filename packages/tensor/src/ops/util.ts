/** @file Helpers shared by raw ops: argument validation (dtypes, shapes, options, operands), uniform packing, broadcasting, axes. */
import type { DType } from '@metagrad/kernels-wgsl';
import { DisposedTensorError, DTypeError, InvalidArgumentError, ShapeError } from '../errors';
import { Device } from '../device';
import { Tensor, type Shape } from '../tensor';

/** The element types every op understands (anything else would reinterpret 32-bit words). */
export const DTYPES: readonly DType[] = ['f32', 'i32', 'u32'];

/** Throws DTypeError listing the valid dtypes unless `dtype` is one of them (JS callers can pass any string). */
export function checkDType(op: string, dtype: unknown): DType {
  if (!(DTYPES as readonly unknown[]).includes(dtype)) {
    throw new DTypeError(`${op}: unknown dtype ${describeValue(dtype)}; valid dtypes are ${DTYPES.join(', ')}`);
  }
  return dtype as DType;
}

/**
 * Throws InvalidArgumentError unless every operand is a Tensor (a JS caller passing a number or an array would
 * otherwise meet a raw TypeError, or a misleading device error, deep inside the op), and DisposedTensorError for a
 * disposed one: checked up front, because an op that met it at its first buffer read had already allocated.
 */
export function checkTensors(op: string, operands: Record<string, unknown>): void {
  for (const [name, v] of Object.entries(operands)) {
    if (!(v instanceof Tensor)) throw new InvalidArgumentError(`${op}: ${name} must be a Tensor, got ${describeValue(v)}${v === null ? '' : ` (${typeof v})`}`);
    if (v.isDisposed) throw new DisposedTensorError(`${op}: operand ${name} (tensor #${v.id} [${v.shape.join(', ')}]) was disposed`);
  }
}

/**
 * Runs `record` (the dispatches or the upload) for a freshly allocated output; if it throws (a kernel that fails to
 * build, a device lost mid-op), frees the output first, so a failed op leaks nothing. Ops that allocate
 * temporaries too run their recording phase in tidy() for the same guarantee.
 */
export function recordInto<T extends Tensor>(out: T, record: () => void): T {
  try {
    record();
  } catch (e) {
    out.dispose();
    throw e;
  }
  return out;
}

/** Throws InvalidArgumentError unless `device` is a Device (a torch habit like `'cpu'` or `'cuda'` would fail deep inside). */
export function checkDevice(op: string, device: unknown): Device {
  if (!(device instanceof Device))
    throw new InvalidArgumentError(`${op}: device must be a Device (from createNodeDevice() or Device.create()), got ${describeValue(device)}`);
  return device;
}

/**
 * Checks an options argument: undefined or null (no options) or a plain object whose keys are all in `known`.
 * A typo ({ alignCorner: true }) or a positional habit (matmul(a, b, true)) would otherwise be silently ignored;
 * torch raises on unexpected keyword arguments too.
 */
export function checkOptions(op: string, options: unknown, known: readonly string[]): void {
  if (options === undefined || options === null) return;
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError(`${op}: options must be an object { ${known.join(', ')} }, got ${describeValue(options)}`);
  }
  const unknown = Object.keys(options).filter((k) => !known.includes(k));
  if (unknown.length > 0)
    throw new InvalidArgumentError(`${op}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${known.join(', ')})`);
}

/** Throws InvalidArgumentError unless `v` is a boolean (keepDims: 'false' or 1 would be read as true). */
export function checkBoolean(op: string, what: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new InvalidArgumentError(`${op}: ${what} must be true or false, got ${describeValue(v)}`);
  return v;
}

/** Throws ShapeError unless `shape` is an array of non-negative integers (a bare number or NaN dim is a mistake). */
export function checkShapeArg(op: string, shape: unknown, what = 'shape'): Shape {
  if (!Array.isArray(shape)) throw new ShapeError(`${op}: ${what} must be an array of dims, got ${describeValue(shape)}`);
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0)
      throw new ShapeError(`${op}: ${what} [${shape.map(describeValue).join(', ')}] has an invalid dimension ${describeValue(d)}`);
  }
  return shape as Shape;
}

/** Throws InvalidArgumentError unless `v` is an integer >= `min` (sizes, counts, class numbers). */
export function checkInteger(op: string, what: string, v: unknown, min = 0): number {
  if (!Number.isInteger(v) || (v as number) < min) throw new InvalidArgumentError(`${op}: ${what} must be an integer >= ${min}, got ${describeValue(v)}`);
  return v as number;
}

/** Throws InvalidArgumentError unless `v` is a JS number (NaN and ±Infinity allowed: float ops take them, as torch). */
export function checkNumber(op: string, what: string, v: unknown): number {
  if (typeof v !== 'number') throw new InvalidArgumentError(`${op}: ${what} must be a number, got ${describeValue(v)}`);
  return v;
}

/** A value as an error message shows it: strings quoted, everything else as String() would (never throws). */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v))
    return v.length <= 8 ? `[${v.map(describeValue).join(', ')}]` : `[${v.slice(0, 8).map(describeValue).join(', ')}, … (${v.length} items)]`;
  try {
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/** Packs uniform fields as 32-bit words in declaration order (WGSL struct of u32/i32/f32 scalars and arrays). */
export class UniformWriter {
  private readonly words: number[] = [];
  private readonly view = new DataView(new ArrayBuffer(4));

  u32(v: number): this {
    this.words.push(v >>> 0);
    return this;
  }

  i32(v: number): this {
    this.words.push(v | 0);
    return this;
  }

  f32(v: number): this {
    this.view.setFloat32(0, v, true);
    this.words.push(this.view.getUint32(0, true));
    return this;
  }

  /** Appends `values` padded with `fill` to `length` words (fixed-size arrays of rank-dependent data). */
  u32s(values: readonly number[], length = values.length, fill = 0): this {
    for (let i = 0; i < length; i++) this.u32(i < values.length ? values[i] : fill);
    return this;
  }

  /** Pads to a multiple of 4 words (16 bytes), as uniform structs containing vec4 arrays need. */
  finish(): Uint32Array {
    while (this.words.length % 4 !== 0) this.words.push(0);
    return Uint32Array.from(this.words);
  }
}

export function fmt(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** NumPy broadcasting of any number of shapes; throws ShapeError naming `op` and all shapes. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i];
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else throw new ShapeError(`${op}: shapes ${shapes.map(fmt).join(' and ')} cannot be broadcast together`);
    }
  }
  return out;
}

/** Row-major strides; broadcast strides put 0 on stretched dims when aligned to `outShape`. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const strides = stridesOf(shape);
  const off = outShape.length - shape.length;
  return outShape.map((_d, i) => (i < off || shape[i - off] === 1 ? 0 : strides[i - off]));
}

/** Normalises possibly-negative axes, checks range and duplicates; undefined means all axes. */
export function normalizeAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  if (typeof axes !== 'number' && !Array.isArray(axes)) throw new ShapeError(`${op}: axes must be a number or an array, got ${describeValue(axes)}`);
  const list: unknown[] = typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => {
    const n = typeof a === 'number' && a < 0 ? a + rank : a;
    if (!Number.isInteger(n) || (n as number) < 0 || (n as number) >= rank)
      throw new ShapeError(`${op}: axis ${describeValue(a)} is out of range for rank ${rank}`);
    return n as number;
  });
  if (new Set(out).size !== out.length) throw new ShapeError(`${op}: repeated axis in [${list.join(', ')}]`);
  return out.sort((x, y) => x - y);
}

/**
 * mulberry32: a tiny seeded host PRNG in [0, 1), for reproducible test data and gradcheck directions that must
 * not depend on the GPU random ops under test.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
