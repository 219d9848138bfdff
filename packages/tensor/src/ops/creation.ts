/** @file Creation ops: tensors from host data, constants, ranges, identity. */
import { fillKernel, linearDispatch, type DType } from '@metagrad/kernels-wgsl';
import type { Device } from '../device';
import { DTypeError, InvalidArgumentError, ShapeError } from '../errors';
import { getDefaultDevice } from '../runtime';
import { BYTES_PER_ELEMENT, sizeOf, Storage, Tensor, type Shape } from '../tensor';
import { checkDevice, checkDType, checkInteger, checkNumber, checkShapeArg, describeValue, recordInto } from './util';

/** Flat host data: a typed array or any array-like of numbers. */
type FlatData = ArrayLike<number> | Float32Array | Int32Array | Uint32Array;
/** Nested arrays as torch.tensor / tf.tensor take them: `[[1, 2], [3, 4]]` (rows of equal length, any depth). */
export type NestedArray = readonly (number | NestedArray | Float32Array | Int32Array | Uint32Array)[];
type HostData = FlatData | NestedArray;

/** An uninitialised tensor (internal: every op allocates its output with this). */
export function empty(shape: Shape, dtype: DType = 'f32', device: Device = getDefaultDevice()): Tensor {
  checkShapeArg('empty', shape);
  checkDType('empty', dtype);
  checkDevice('empty', device);
  return new Tensor(Storage.allocate(device, sizeOf(shape) * BYTES_PER_ELEMENT), [...shape], dtype);
}

/** The inclusive range of each integer dtype (values outside it would wrap silently on upload). */
const INT_RANGE: Record<'i32' | 'u32', readonly [number, number]> = {
  i32: [-(2 ** 31), 2 ** 31 - 1],
  u32: [0, 2 ** 32 - 1],
};

/** Checks that a number fits `dtype` (integer dtypes truncate toward zero, as torch does, but never wrap). */
function checkFits(op: string, v: number, dtype: DType, where: string): void {
  if (dtype === 'f32') return;
  const t = Math.trunc(v);
  const [lo, hi] = INT_RANGE[dtype];
  if (!(t >= lo && t <= hi)) throw new DTypeError(`${op}: ${where} ${v} does not fit dtype ${dtype} (range [${lo}, ${hi}])`);
}

function hostArray(data: FlatData, dtype: DType): Float32Array | Int32Array | Uint32Array {
  if (dtype === 'f32') return data instanceof Float32Array ? data : Float32Array.from(data);
  if (dtype === 'i32' && data instanceof Int32Array) return data;
  if (dtype === 'u32' && data instanceof Uint32Array) return data;
  for (let i = 0; i < data.length; i++) checkFits('tensor()', data[i], dtype, `value at ${i}`);
  return dtype === 'i32' ? Int32Array.from(data) : Uint32Array.from(data);
}

function isTypedArray(v: unknown): v is Float32Array | Int32Array | Uint32Array {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

/** One level of host data: an array or typed array (a string is array-like but never data). */
function isLevel(v: unknown): v is ArrayLike<unknown> {
  return Array.isArray(v) || isTypedArray(v);
}

/**
 * Flattens host data row-major and infers its shape from the nesting (the first element of each level gives that
 * level's length). Ragged rows are a ShapeError showing both lengths; an entry that is not a number (a string,
 * undefined, a boolean, an object) is a DTypeError naming its position, never a silent NaN.
 */
function flattenHostData(data: HostData): { flat: FlatData; shape: number[] } {
  if (isTypedArray(data)) return { flat: data, shape: [data.length] };
  if (!Array.isArray(data)) throw new DTypeError(`tensor(): data must be a number, an array or a typed array, got ${describeValue(data)}`);
  const shape: number[] = [];
  for (let level: unknown = data; isLevel(level); level = level[0]) {
    shape.push(level.length);
    if (level.length === 0) break;
  }
  if (shape.length === 1) {
    for (let i = 0; i < data.length; i++) checkEntry(data[i], [i]);
    return { flat: data as ArrayLike<number>, shape };
  }
  const flat: number[] = [];
  const walk = (level: unknown, depth: number, path: number[]): void => {
    if (depth === shape.length) {
      checkEntry(level, path);
      flat.push(level as number);
      return;
    }
    if (!isLevel(level) || level.length !== shape[depth]) {
      const got = isLevel(level) ? `has length ${level.length}` : `is ${describeValue(level)}, not an array`;
      throw new ShapeError(
        `tensor(): ragged nested array: element ${pathStr(path)} ${got}, but element ${pathStr(path.map(() => 0))} has length ${shape[depth]} (inferred shape [${shape.join(', ')}])`,
      );
    }
    for (let i = 0; i < level.length; i++) walk(level[i], depth + 1, [...path, i]);
  };
  walk(data, 0, []);
  return { flat, shape };
}

function pathStr(path: readonly number[]): string {
  return path.length === 0 ? 'at the top level' : path.map((i) => `[${i}]`).join('');
}

function checkEntry(v: unknown, path: readonly number[]): void {
  if (typeof v === 'number') return;
  if (isLevel(v)) throw new ShapeError(`tensor(): ragged nested array: element ${pathStr(path)} is an array where its siblings are numbers`);
  throw new DTypeError(`tensor(): element ${pathStr(path)} is ${describeValue(v)} (${v === null ? 'null' : typeof v}); tensor() takes numbers`);
}

/**
 * Creates a tensor from host data, like torch.tensor / tf.tensor: a number (0-d unless `shape` is given), flat
 * data (1-D unless `shape` is given) or nested arrays, whose shape is inferred (and must match `shape` if both are
 * given). f32 keeps NaN and ±Infinity; i32/u32 truncate toward zero and reject values that do not fit.
 */
export function tensor(data: HostData | number, shape?: Shape, dtype?: DType, device: Device = getDefaultDevice()): Tensor {
  const dt: DType = checkDType('tensor()', dtype ?? (data instanceof Int32Array ? 'i32' : data instanceof Uint32Array ? 'u32' : 'f32'));
  checkDevice('tensor()', device);
  if (shape !== undefined) checkShapeArg('tensor()', shape);
  if (typeof data === 'number') return full(shape ?? [], data, dt, device);
  const { flat, shape: inferred } = flattenHostData(data);
  const shp = shape ?? inferred;
  if (sizeOf(shp) !== flat.length) {
    throw new ShapeError(
      `tensor(): ${flat.length} values (data of shape [${inferred.join(', ')}]) cannot fill shape [${shp.join(', ')}] (${sizeOf(shp)} elements)`,
    );
  }
  const host = hostArray(flat, dt);
  const t = empty(shp, dt, device);
  return host.length > 0 ? recordInto(t, () => device.write(t.storage.buffer, host)) : t;
}

/** Encodes a scalar as the 32-bit pattern of `dtype`. */
export function scalarBits(value: number, dtype: DType): number {
  const buf = new ArrayBuffer(4);
  if (dtype === 'f32') new Float32Array(buf)[0] = value;
  else if (dtype === 'i32') new Int32Array(buf)[0] = value;
  else new Uint32Array(buf)[0] = value;
  return new Uint32Array(buf)[0];
}

/** A tensor filled with `value` (f32 takes NaN and ±Infinity; integer dtypes need an integer that fits). */
export function full(shape: Shape, value: number, dtype: DType = 'f32', device: Device = getDefaultDevice()): Tensor {
  checkShapeArg('full()', shape);
  checkDType('full()', dtype);
  checkDevice('full()', device);
  checkNumber('full()', 'value', value);
  if (dtype !== 'f32' && !Number.isInteger(value)) throw new DTypeError(`full(): ${value} is not an integer for dtype ${dtype}`);
  checkFits('full()', value, dtype, 'value');
  const t = empty(shape, dtype, device);
  if (t.size === 0) return t;
  return recordInto(t, () =>
    device.dispatch(fillKernel({ dtype }), [t.storage.buffer], new Uint32Array([t.size, scalarBits(value, dtype)]), linearDispatch(t.size)),
  );
}

export function zeros(shape: Shape, dtype: DType = 'f32', device?: Device): Tensor {
  return full(shape, 0, dtype, device);
}

export function ones(shape: Shape, dtype: DType = 'f32', device?: Device): Tensor {
  return full(shape, 1, dtype, device);
}

/** Like torch.arange: [start, stop) in steps of `step`. */
export function arange(start: number, stop?: number, step = 1, dtype: DType = 'f32', device?: Device): Tensor {
  if (stop === undefined) [start, stop] = [0, start];
  checkDType('arange()', dtype);
  if (![start, stop, step].every((v) => typeof v === 'number' && Number.isFinite(v)) || step === 0) {
    throw new InvalidArgumentError(
      `arange(): needs finite numbers and a nonzero step, got start=${describeValue(start)} stop=${describeValue(stop)} step=${describeValue(step)}`,
    );
  }
  const n = Math.max(0, Math.ceil((stop - start) / step));
  if (n > 2 ** 32) throw new InvalidArgumentError(`arange(): ${n} elements (start=${start} stop=${stop} step=${step}) is more than 2^32`);
  if (n > 0) {
    checkFits('arange()', start, dtype, 'first value');
    checkFits('arange()', start + (n - 1) * step, dtype, 'last value');
  }
  const t = empty([n], dtype, checkDevice('arange()', device === undefined ? getDefaultDevice() : device)); // before the host array: a huge range fails as OutOfMemoryError
  return recordInto(t, () => {
    const data = new Float64Array(n);
    for (let i = 0; i < n; i++) data[i] = start + i * step;
    if (n > 0) t.device.write(t.storage.buffer, hostArray(data, dtype));
  });
}

/** n×m identity (m defaults to n). */
export function eye(n: number, m = n, dtype: DType = 'f32', device?: Device): Tensor {
  checkInteger('eye()', 'n', n);
  checkInteger('eye()', 'm', m);
  checkDType('eye()', dtype);
  // The output first: a huge n·m is an OutOfMemoryError, not a RangeError from the host array.
  const t = empty([n, m], dtype, checkDevice('eye()', device === undefined ? getDefaultDevice() : device));
  return recordInto(t, () => {
    const data = new Float32Array(n * m);
    for (let i = 0; i < Math.min(n, m); i++) data[i * m + i] = 1;
    if (data.length > 0) t.device.write(t.storage.buffer, hostArray(data, dtype));
  });
}
