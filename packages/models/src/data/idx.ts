/**
 * @file The IDX file format (MNIST, Fashion-MNIST): a browser-safe parser and encoder over raw, already
 * decompressed bytes. Layout: two zero bytes, a type code, the rank, rank big-endian uint32 dimensions,
 * then the elements big-endian in row-major order.
 */
import { InvalidArgumentError, ShapeError } from '@metagrad/tensor';
import { CorruptDatasetError } from './errors';

export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  dtype: IdxDtype;
  shape: number[];
  data: IdxData;
}

const DTYPE_BY_CODE: Record<number, IdxDtype> = {
  8: 'uint8',
  9: 'int8',
  11: 'int16',
  12: 'int32',
  13: 'float32',
  14: 'float64',
};

const CODE_BY_DTYPE: Record<IdxDtype, number> = {
  uint8: 0x08,
  int8: 0x09,
  int16: 0x0b,
  int32: 0x0c,
  float32: 0x0d,
  float64: 0x0e,
};

const BYTES_PER_ELEMENT: Record<IdxDtype, number> = {
  uint8: 1,
  int8: 1,
  int16: 2,
  int32: 4,
  float32: 4,
  float64: 8,
};

const INTEGER_RANGE: Partial<Record<IdxDtype, readonly [number, number]>> = {
  uint8: [0, 255],
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
};

/** What an IDX header announces: the element type and shape, and how many bytes the header and whole file take. */
export interface IdxHeader {
  dtype: IdxDtype;
  shape: number[];
  headerBytes: number;
  /** Header plus elements; may exceed Number.MAX_SAFE_INTEGER (or be Infinity) for a corrupt header. */
  totalBytes: number;
}

/** The largest IDX header: the 4-byte magic and 255 dimensions. */
export const MAX_IDX_HEADER_BYTES = 4 + 4 * 255;

/**
 * Reads the header at the start of `bytes` (which may be only the first bytes of a file). Returns null when
 * `bytes` is too short to hold the whole header, and throws CorruptDatasetError when the magic is wrong.
 */
export function readIdxHeader(bytes: Uint8Array, source?: string): IdxHeader | null {
  const fail = (message: string): never => {
    throw new CorruptDatasetError(message, source);
  };
  if (bytes.length < 4) return null;
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) fail('IDX bytes are still gzip-compressed (magic 1f 8b); gunzip them first');
  const magic = hex(bytes.subarray(0, 4));
  if (bytes[0] !== 0 || bytes[1] !== 0) fail(`bad IDX magic ${magic}: the first two bytes must be 00 00`);
  const dtype = DTYPE_BY_CODE[bytes[2]];
  if (dtype === undefined) fail(`bad IDX magic ${magic}: unknown type code 0x${bytes[2].toString(16).padStart(2, '0')}`);
  const rank = bytes[3];
  if (rank === 0) fail(`bad IDX magic ${magic}: rank 0`);
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  for (let axis = 0; axis < rank; axis++) shape.push(view.getUint32(4 + 4 * axis, false));
  const count = shape.reduce((a, b) => a * b, 1);
  return { dtype, shape, headerBytes, totalBytes: headerBytes + count * BYTES_PER_ELEMENT[dtype] };
}

/**
 * Parses an IDX file. For uint8 (the only type MNIST-style files use) the returned data is a view into
 * `bytes`, not a copy: a 47 MB training set is not duplicated. `source` only decorates error messages.
 */
export function parseIdx(bytes: Uint8Array, source?: string): IdxArray {
  const fail = (message: string): never => {
    throw new CorruptDatasetError(message, source);
  };
  if (bytes.length < 4) fail(`IDX file is ${bytes.length} bytes, shorter than its 4-byte magic number`);
  const header = readIdxHeader(bytes, source);
  if (header === null) {
    const headerBytes = 4 + 4 * bytes[3];
    return fail(`IDX header truncated: rank ${bytes[3]} needs ${headerBytes} bytes, file has ${bytes.length}`);
  }
  const { dtype, shape, headerBytes, totalBytes: expectedBytes } = header;
  const count = shape.reduce((a, b) => a * b, 1);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < expectedBytes) {
    fail(`IDX data truncated: shape [${shape.join(', ')}] of ${dtype} needs ${expectedBytes} bytes, file has ${bytes.length}`);
  }
  if (bytes.length > expectedBytes) {
    // Trailing bytes mean the header's counts disagree with the payload: refuse rather than guess.
    fail(`IDX size mismatch: shape [${shape.join(', ')}] of ${dtype} needs ${expectedBytes} bytes, file has ${bytes.length}`);
  }

  const start = headerBytes;
  let data: IdxData;
  switch (dtype) {
    case 'uint8':
      data = bytes.subarray(start, start + count);
      break;
    case 'int8':
      data = new Int8Array(bytes.buffer, bytes.byteOffset + start, count).slice();
      break;
    case 'int16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(start + 2 * i, false);
      data = out;
      break;
    }
    case 'int32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(start + 4 * i, false);
      data = out;
      break;
    }
    case 'float32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(start + 4 * i, false);
      data = out;
      break;
    }
    case 'float64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(start + 8 * i, false);
      data = out;
      break;
    }
  }
  return { dtype, shape, data };
}

/** Encodes an array as IDX bytes (uncompressed); the inverse of parseIdx. Used for fixtures and caches. */
export function encodeIdx(array: IdxArray): Uint8Array {
  if (typeof array !== 'object' || array === null)
    throw new InvalidArgumentError(`encodeIdx: expected { dtype, shape, data }, got ${array === null ? 'null' : typeof array}`);
  const { dtype, shape, data } = array;
  if (typeof dtype !== 'string' || !Object.hasOwn(CODE_BY_DTYPE, dtype)) {
    throw new InvalidArgumentError(`encodeIdx: unknown dtype ${String(dtype)} (${Object.keys(CODE_BY_DTYPE).join(', ')})`);
  }
  if (!Array.isArray(shape)) throw new ShapeError(`encodeIdx: shape must be an array of dimensions, got ${String(shape)}`);
  if (shape.length === 0 || shape.length > 255) throw new ShapeError(`encodeIdx: rank ${shape.length} must be in 1..255`);
  if (!shape.every((dim) => Number.isInteger(dim) && dim >= 0 && dim <= 0xffffffff)) {
    throw new ShapeError(`encodeIdx: shape [${shape.join(', ')}] must be integers in 0..4294967295 (the header stores uint32)`);
  }
  if (!ArrayBuffer.isView(data) && !Array.isArray(data))
    throw new InvalidArgumentError(`encodeIdx: data must be a typed array or an array of numbers, got ${String(data)}`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== (data as ArrayLike<number>).length) {
    throw new ShapeError(`encodeIdx: shape [${shape.join(', ')}] has ${count} elements, data has ${(data as ArrayLike<number>).length}`);
  }
  if (Array.isArray(data)) {
    // A typed array holds numbers by construction; a plain array may not ('1' would be written as 1, 'x' as NaN).
    const bad = data.findIndex((v) => typeof v !== 'number');
    if (bad >= 0) throw new InvalidArgumentError(`encodeIdx: element ${bad} is ${JSON.stringify(data[bad])}, not a number`);
  }
  const range = INTEGER_RANGE[dtype];
  if (range !== undefined) {
    // DataView.setUint8(300) stores 44: an out-of-range or fractional value would be written silently wrong.
    for (let i = 0; i < count; i++) {
      const value = data[i];
      if (!(Number.isInteger(value) && value >= range[0] && value <= range[1])) {
        throw new InvalidArgumentError(`encodeIdx: element ${i} is ${value}, not an integer in ${dtype}'s range [${range[0]}, ${range[1]}]`);
      }
    }
  }
  const headerBytes = 4 + 4 * shape.length;
  const out = new Uint8Array(headerBytes + count * BYTES_PER_ELEMENT[dtype]);
  const view = new DataView(out.buffer);
  out[2] = CODE_BY_DTYPE[dtype];
  out[3] = shape.length;
  shape.forEach((dim, axis) => view.setUint32(4 + 4 * axis, dim, false));
  const start = headerBytes;
  for (let i = 0; i < count; i++) {
    const value = data[i];
    switch (dtype) {
      case 'uint8':
        view.setUint8(start + i, value);
        break;
      case 'int8':
        view.setInt8(start + i, value);
        break;
      case 'int16':
        view.setInt16(start + 2 * i, value, false);
        break;
      case 'int32':
        view.setInt32(start + 4 * i, value, false);
        break;
      case 'float32':
        view.setFloat32(start + 4 * i, value, false);
        break;
      case 'float64':
        view.setFloat64(start + 8 * i, value, false);
        break;
    }
  }
  return out;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');
}
