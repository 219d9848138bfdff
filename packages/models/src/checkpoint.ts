/**
 * @file The safetensors checkpoint format, browser-safe: an 8-byte little-endian header length, a JSON
 * header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}} padded
 * with spaces to 8 bytes, then the raw little-endian tensor bytes. Files interoperate with the Python
 * `safetensors` library (for the F32 / I32 / U32 dtypes supported here).
 */

export type SafetensorsDtype = 'F32' | 'I32' | 'U32';

export type SafetensorsData = Float32Array | Int32Array | Uint32Array;

export interface SafetensorsEntry {
  dtype: SafetensorsDtype;
  shape: number[];
  data: SafetensorsData;
}

/**
 * A decoded file. Both records have a null prototype, so any name a file holds (`__proto__`, `toString`)
 * is an ordinary own key and an absent name reads as undefined.
 */
export interface SafetensorsContents {
  tensors: Record<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

/** A malformed safetensors file or an invalid entry to encode; the message says which entry and why. */
export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

const ARRAY_TYPE: Record<SafetensorsDtype, { name: string; make: (buffer: ArrayBuffer) => SafetensorsData }> = {
  F32: { name: 'Float32Array', make: (buffer) => new Float32Array(buffer) },
  I32: { name: 'Int32Array', make: (buffer) => new Int32Array(buffer) },
  U32: { name: 'Uint32Array', make: (buffer) => new Uint32Array(buffer) },
};

/** An explicit list, not `dtype in ARRAY_TYPE`: "toString" or "__proto__" are `in` every object. */
const SUPPORTED_DTYPES: ReadonlySet<string> = new Set<SafetensorsDtype>(['F32', 'I32', 'U32']);

function isSupportedDtype(dtype: unknown): dtype is SafetensorsDtype {
  return typeof dtype === 'string' && SUPPORTED_DTYPES.has(dtype);
}

/** A record without a prototype: assigning `__proto__` or `constructor` stores a key instead of changing the object. */
function nullPrototypeRecord<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** Dtypes of the format that this reader recognises but does not load, for a clearer error. */
const OTHER_SAFETENSORS_DTYPES = new Set(['BOOL', 'U8', 'I8', 'F8_E5M2', 'F8_E4M3', 'I16', 'U16', 'F16', 'BF16', 'I64', 'U64', 'F64']);

/** The Rust reference implementation refuses headers above 100 MB; so do we, before allocating strings. */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';
const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function dtypeOf(data: SafetensorsData): SafetensorsDtype | null {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof Uint32Array) return 'U32';
  return null;
}

/** Encodes tensors (sorted by name, so the bytes do not depend on insertion order) and optional metadata. */
export function encodeSafetensors(entries: Record<string, SafetensorsEntry>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(entries).sort();
  // Null prototype: a tensor or metadata key named "__proto__" must become a JSON key, not the object's prototype.
  const header = nullPrototypeRecord<unknown>();
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    const copy = nullPrototypeRecord<string>();
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') throw new SafetensorsError(`metadata "${key}" must be a string, got ${typeof value}`);
      copy[key] = value;
    }
    header[METADATA_KEY] = copy;
  }
  let offset = 0;
  for (const name of names) {
    const entry: unknown = entries[name];
    if (typeof entry !== 'object' || entry === null) throw new SafetensorsError(`tensor "${name}": entry must be an object, got ${String(entry)}`);
    const { dtype, shape, data } = entry as SafetensorsEntry;
    // The empty name is legal in the format (and the reader accepts it); only the metadata key is reserved.
    if (name === METADATA_KEY) throw new SafetensorsError(`invalid tensor name "${name}": reserved for the metadata`);
    if (!isSupportedDtype(dtype)) throw new SafetensorsError(`tensor "${name}": unsupported dtype ${String(dtype)} (F32, I32, U32)`);
    if (dtypeOf(data) !== dtype) {
      const got = ArrayBuffer.isView(data) ? data.constructor.name : Object.prototype.toString.call(data);
      throw new SafetensorsError(`tensor "${name}": dtype ${dtype} needs a ${ARRAY_TYPE[dtype].name}, got ${got}`);
    }
    if (!Array.isArray(shape) || !shape.every((dim) => Number.isSafeInteger(dim) && dim >= 0)) {
      const shown = Array.isArray(shape) ? `[${shape.join(', ')}]` : String(shape);
      throw new SafetensorsError(`tensor "${name}": shape ${shown} must be non-negative integers`);
    }
    if (elementCount(shape) !== data.length) {
      throw new SafetensorsError(`tensor "${name}": shape [${shape.join(', ')}] has ${elementCount(shape)} elements, data has ${data.length}`);
    }
    header[name] = { dtype, shape: [...shape], data_offsets: [offset, offset + data.byteLength] };
    offset += data.byteLength;
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad the header with spaces so the tensor bytes start 8-byte aligned (as the Python writer does).
  const headerBytes = Math.ceil(json.length / 8) * 8;
  if (headerBytes > MAX_HEADER_BYTES) {
    throw new SafetensorsError(`header of ${names.length} tensors is ${headerBytes} bytes, above the ${MAX_HEADER_BYTES}-byte limit readers accept`);
  }
  const out = new Uint8Array(8 + headerBytes + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerBytes, true);
  view.setUint32(4, 0, true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerBytes);
  let position = 8 + headerBytes;
  for (const name of names) {
    const { data } = entries[name];
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    out.set(bytes, position);
    if (!HOST_IS_LITTLE_ENDIAN) swap32(out.subarray(position, position + bytes.length));
    position += bytes.length;
  }
  return out;
}

/**
 * Decodes and validates a safetensors file: the header must be a JSON object of well-formed entries whose
 * byte ranges lie inside the data section, match their dtype and shape, and tile it exactly with no overlap
 * or gap (the reference implementation's rule). Tensor data is copied out, so it is aligned and independent
 * of `bytes`.
 */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsContents {
  if (bytes.length < 8) throw new SafetensorsError(`file is ${bytes.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  const headerBytes = high * 4294967296 + low;
  if (headerBytes > MAX_HEADER_BYTES) throw new SafetensorsError(`header length ${headerBytes} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  if (8 + headerBytes > bytes.length) {
    throw new SafetensorsError(`header length ${headerBytes} runs past the end of the ${bytes.length}-byte file`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerBytes)));
  } catch (error) {
    throw new SafetensorsError(`header is not valid UTF-8 JSON (${(error as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new SafetensorsError('header must be a JSON object');
  }

  const dataStart = 8 + headerBytes;
  const dataLength = bytes.length - dataStart;
  const metadata = nullPrototypeRecord<string>();
  const ranges: ({ name: string } & ReturnType<typeof parseEntry>)[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new SafetensorsError('__metadata__ must be an object');
      for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof value !== 'string') throw new SafetensorsError(`__metadata__ "${key}" must be a string, got ${JSON.stringify(value)}`);
        metadata[key] = value;
      }
      continue;
    }
    ranges.push({ name, ...parseEntry(name, raw, dataLength) });
  }

  // Check the tiling before copying anything: overlapping entries must not make us copy the data many times over.
  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  let previous = '(start of data)';
  for (const { name, begin, end } of ranges) {
    if (begin < expected) throw new SafetensorsError(`tensor "${name}" bytes [${begin}, ${end}) overlap ${previous} (ends at ${expected})`);
    if (begin > expected) throw new SafetensorsError(`gap in the data section: ${previous} ends at ${expected} but "${name}" starts at ${begin}`);
    expected = end;
    previous = `"${name}"`;
  }
  if (expected !== dataLength) {
    throw new SafetensorsError(`data section is ${dataLength} bytes but the tensors cover only [0, ${expected})`);
  }
  const tensors = nullPrototypeRecord<SafetensorsEntry>();
  for (const { name, dtype, shape, begin, end } of ranges) {
    const copy = bytes.slice(dataStart + begin, dataStart + end);
    if (!HOST_IS_LITTLE_ENDIAN) swap32(copy);
    tensors[name] = { dtype, shape, data: ARRAY_TYPE[dtype].make(copy.buffer) };
  }
  return { tensors, metadata };
}

function parseEntry(name: string, raw: unknown, dataLength: number): { dtype: SafetensorsDtype; shape: number[]; begin: number; end: number } {
  const fail = (message: string): never => {
    throw new SafetensorsError(`tensor "${name}": ${message}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('entry must be an object');
  const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
  if (typeof dtype !== 'string') return fail(`dtype must be a string, got ${JSON.stringify(dtype)}`);
  if (!isSupportedDtype(dtype)) {
    fail(OTHER_SAFETENSORS_DTYPES.has(dtype) ? `dtype ${dtype} is not supported (F32, I32, U32 are)` : `unknown dtype ${JSON.stringify(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every((dim) => Number.isSafeInteger(dim) && dim >= 0)) {
    fail(`shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    fail(`data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) fail(`data_offsets [${begin}, ${end}] have begin after end`);
  if (end > dataLength) fail(`data_offsets [${begin}, ${end}] out of range: the data section is ${dataLength} bytes`);
  const expectedBytes = elementCount(shape as number[]) * 4;
  if (end - begin !== expectedBytes) {
    fail(`data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dtype} [${(shape as number[]).join(', ')}] needs ${expectedBytes}`);
  }
  return { dtype: dtype as SafetensorsDtype, shape: [...(shape as number[])], begin, end };
}

/** Reverses the byte order of each 4-byte word in place (only on big-endian hosts; every dtype here is 4 bytes). */
function swap32(bytes: Uint8Array): void {
  for (let i = 0; i + 3 < bytes.length; i += 4) {
    const a = bytes[i];
    const b = bytes[i + 1];
    bytes[i] = bytes[i + 3];
    bytes[i + 1] = bytes[i + 2];
    bytes[i + 2] = b;
    bytes[i + 3] = a;
  }
}
