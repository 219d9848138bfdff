/** @file safetensors encoding/decoding: round trips, layout details, malformed headers, and the node file helpers. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { SafetensorsError, type SafetensorsEntry, decodeSafetensors, encodeSafetensors } from '../../packages/models/src/checkpoint';
import { loadSafetensors, saveSafetensors } from '../../packages/models/src/node';

/** A file from an arbitrary header object and data bytes, the way a foreign writer might lay it out. */
function rawFile(header: unknown, data: Uint8Array, pad = 0): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const entries: Record<string, SafetensorsEntry> = {
  'layers.0.weight': { dtype: 'F32', shape: [2, 3], data: Float32Array.of(1, -2, 3.5, 1e-30, -0, Infinity) },
  'layers.0.bias': { dtype: 'F32', shape: [3], data: Float32Array.of(0.1, 0.2, 0.3) },
  step: { dtype: 'I32', shape: [], data: Int32Array.of(-7) },
  seed: { dtype: 'U32', shape: [1], data: Uint32Array.of(4294967295) },
  empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
};

describe('encodeSafetensors / decodeSafetensors', () => {
  it('round-trips F32, I32, U32, scalars, empty tensors and metadata', () => {
    const bytes = encodeSafetensors(entries, { format: 'pt', note: 'ünïcode ok' });
    const { tensors, metadata } = decodeSafetensors(bytes);
    expect(metadata).toEqual({ format: 'pt', note: 'ünïcode ok' });
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(entries).sort());
    for (const [name, entry] of Object.entries(entries)) {
      expect(tensors[name].dtype).toBe(entry.dtype);
      expect(tensors[name].shape).toEqual(entry.shape);
      expect(tensors[name].data.constructor).toBe(entry.data.constructor);
      expect(Array.from(tensors[name].data)).toEqual(Array.from(entry.data));
    }
    expect(Object.is(tensors['layers.0.weight'].data[4], -0)).toBe(true);
  });

  it('lays the file out as the format says: u64 LE header length, space-padded JSON, aligned data, name-sorted', () => {
    const bytes = encodeSafetensors({
      b: { dtype: 'F32', shape: [1], data: Float32Array.of(2) },
      a: { dtype: 'I32', shape: [2], data: Int32Array.of(1, 258) },
    });
    const view = new DataView(bytes.buffer);
    const headerLength = view.getUint32(0, true);
    expect(view.getUint32(4, true)).toBe(0);
    expect(headerLength % 8).toBe(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
    expect(header).toEqual({
      a: { dtype: 'I32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
    });
    expect(header.__metadata__).toBeUndefined();
    expect(Array.from(bytes.subarray(8 + headerLength))).toEqual([1, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 64]);
    // Insertion order does not change the bytes.
    const reordered = encodeSafetensors({
      a: { dtype: 'I32', shape: [2], data: Int32Array.of(1, 258) },
      b: { dtype: 'F32', shape: [1], data: Float32Array.of(2) },
    });
    expect(Array.from(reordered)).toEqual(Array.from(bytes));
  });

  it('reads files from other writers: unpadded header, arbitrary key order, unaligned data; copies the data out', () => {
    const data = new Uint8Array(new Float32Array([1.5, -2.5, 7]).buffer);
    const file = rawFile(
      {
        y: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
        __metadata__: { k: 'v' },
        x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      },
      data,
    );
    const { tensors, metadata } = decodeSafetensors(file);
    expect(Array.from(tensors.x.data)).toEqual([1.5, -2.5]);
    expect(Array.from(tensors.y.data)).toEqual([7]);
    expect(metadata).toEqual({ k: 'v' });
    file.fill(0, file.length - 12);
    expect(Array.from(tensors.x.data)).toEqual([1.5, -2.5]);
    // A subarray view at an odd byte offset still decodes.
    const inner = rawFile({ x: { dtype: 'I32', shape: [1], data_offsets: [0, 4] } }, Uint8Array.of(5, 0, 0, 0));
    const shifted = new Uint8Array(inner.length + 1);
    shifted.set(inner, 1);
    expect(Array.from(decodeSafetensors(shifted.subarray(1)).tensors.x.data)).toEqual([5]);
  });

  it('rejects invalid entries when encoding', () => {
    const encode =
      (entry: unknown, name = 'w') =>
      () =>
        encodeSafetensors({ [name]: entry as SafetensorsEntry });
    expect(encode({ dtype: 'I32', shape: [1], data: Float32Array.of(1) })).toThrow(/tensor "w": dtype I32 needs a Int32Array, got Float32Array/);
    expect(encode({ dtype: 'F32', shape: [2, 2], data: Float32Array.of(1, 2, 3) })).toThrow(/shape \[2, 2\] has 4 elements, data has 3/);
    expect(encode({ dtype: 'F16', shape: [1], data: Float32Array.of(1) })).toThrow(/unsupported dtype F16/);
    expect(encode({ dtype: 'F32', shape: [-1], data: Float32Array.of(1) })).toThrow(/non-negative integers/);
    expect(encode({ dtype: 'F32', shape: [1], data: Float32Array.of(1) }, '__metadata__')).toThrow(SafetensorsError);
    expect(() => encodeSafetensors({}, { n: 3 as unknown as string })).toThrow(/metadata "n" must be a string/);
  });

  it('rejects malformed files with a SafetensorsError that says what is wrong', () => {
    const four = Uint8Array.of(0, 0, 128, 63);
    const cases: [Uint8Array, RegExp][] = [
      [Uint8Array.of(1, 2, 3), /shorter than the 8-byte header length/],
      [Uint8Array.of(200, 0, 0, 0, 0, 0, 0, 0, 123), /header length 200 runs past the end of the 9-byte file/],
      [Uint8Array.of(0, 0, 0, 0, 1, 0, 0, 0), /exceeds the 100000000-byte limit/],
      [rawFile('nope', new Uint8Array(0)).map((b, i) => (i === 8 ? 0x7b : b)), /not valid UTF-8 JSON/],
      [rawFile([1, 2], new Uint8Array(0)), /header must be a JSON object/],
      [rawFile({ w: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, four), /tensor "w": dtype F16 is not supported/],
      [rawFile({ w: { dtype: 'Q7', shape: [1], data_offsets: [0, 4] } }, four), /unknown dtype "Q7"/],
      [rawFile({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }, four), /shape must be an array of non-negative integers/],
      [rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: [0] } }, four), /data_offsets must be \[begin, end\]/],
      [rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, four), /begin after end/],
      [rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, four), /data_offsets \[4, 8\] out of range: the data section is 4 bytes/],
      [rawFile({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, four), /hold 4 bytes, but F32 \[2\] needs 8/],
      [
        rawFile(
          {
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
          },
          new Uint8Array(8),
        ),
        /tensor "b" bytes \[4, 8\) overlap "a" \(ends at 8\)/,
      ],
      [
        rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)),
        /gap in the data section: \(start of data\) ends at 0 but "a" starts at 4/,
      ],
      [rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(8)), /data section is 8 bytes but the tensors cover only \[0, 4\)/],
      [rawFile({ __metadata__: { n: 1 } }, new Uint8Array(0)), /__metadata__ "n" must be a string/],
      [rawFile({ w: 3 }, new Uint8Array(0)), /tensor "w": entry must be an object/],
    ];
    for (const [bytes, pattern] of cases) {
      expect(() => decodeSafetensors(bytes), String(pattern)).toThrow(SafetensorsError);
      expect(() => decodeSafetensors(bytes), String(pattern)).toThrow(pattern);
    }
  });
});

describe('names and dtypes that collide with Object.prototype', () => {
  const reserved = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];

  it('round-trips tensors and metadata keys named __proto__, constructor, toString', () => {
    // A computed key makes "__proto__" an own property, as JSON.parse or a loop over user names would.
    const named: Record<string, SafetensorsEntry> = {};
    const meta: Record<string, string> = {};
    reserved.forEach((name, i) => {
      Object.defineProperty(named, name, {
        value: { dtype: 'F32', shape: [1], data: Float32Array.of(i + 0.5) },
        enumerable: true,
      });
      Object.defineProperty(meta, name, { value: `m${i}`, enumerable: true });
    });
    const { tensors, metadata } = decodeSafetensors(encodeSafetensors(named, meta));
    expect(Object.keys(tensors).sort()).toEqual([...reserved].sort());
    reserved.forEach((name, i) => {
      expect(Array.from(Object.getOwnPropertyDescriptor(tensors, name)?.value.data)).toEqual([i + 0.5]);
      expect(Object.getOwnPropertyDescriptor(metadata, name)?.value).toBe(`m${i}`);
    });
    // A name the file does not hold reads as undefined, not as an Object.prototype method.
    const plain = decodeSafetensors(encodeSafetensors({ w: entries.step }));
    expect(plain.tensors.toString).toBeUndefined();
    expect(plain.metadata.constructor).toBeUndefined();
  });

  it('rejects a dtype that only exists on Object.prototype with a SafetensorsError, when reading and writing', () => {
    for (const dtype of reserved) {
      const file = rawFile({ w: { dtype, shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4));
      expect(() => decodeSafetensors(file), dtype).toThrow(SafetensorsError);
      expect(() => decodeSafetensors(file), dtype).toThrow(`unknown dtype ${JSON.stringify(dtype)}`);
      const entry = { dtype, shape: [1], data: Float32Array.of(1) } as unknown as SafetensorsEntry;
      expect(() => encodeSafetensors({ w: entry }), dtype).toThrow(SafetensorsError);
    }
  });

  it('rejects entries that are not entries when writing, with a SafetensorsError', () => {
    const bad = [
      null,
      3,
      { dtype: 'F32', shape: 'x', data: Float32Array.of(1) },
      { dtype: 'F32', shape: [1], data: [1] },
      { dtype: 'F32', shape: [1], data: Object.create(null) },
    ];
    for (const entry of bad) {
      expect(() => encodeSafetensors({ w: entry as unknown as SafetensorsEntry }), JSON.stringify(entry)).toThrow(SafetensorsError);
    }
  });
});

/** Decodes `bytes`; a failure must be a SafetensorsError, and a success must survive a re-encode unchanged. */
function decodesCleanly(bytes: Uint8Array): ReturnType<typeof decodeSafetensors> | null {
  let decoded: ReturnType<typeof decodeSafetensors>;
  try {
    decoded = decodeSafetensors(bytes);
  } catch (error) {
    if (!(error instanceof SafetensorsError)) throw error;
    return null;
  }
  const again = decodeSafetensors(encodeSafetensors(decoded.tensors, decoded.metadata));
  expect(Object.keys(again.tensors).sort()).toEqual(Object.keys(decoded.tensors).sort());
  for (const name of Object.keys(decoded.tensors)) {
    expect(again.tensors[name].dtype).toBe(decoded.tensors[name].dtype);
    expect(again.tensors[name].shape).toEqual(decoded.tensors[name].shape);
    expect(Array.from(again.tensors[name].data)).toEqual(Array.from(decoded.tensors[name].data));
  }
  return decoded;
}

describe('decodeSafetensors under fuzzing', () => {
  const valid = encodeSafetensors(entries, { format: 'pt' });
  const headerEnd = 8 + new DataView(valid.buffer).getUint32(0, true);

  it('random bytes, and random bytes behind a plausible header length, throw only SafetensorsError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), fc.boolean(), (tail, prefixLength) => {
        const bytes = prefixLength ? new Uint8Array(8 + tail.length) : tail;
        if (prefixLength) {
          new DataView(bytes.buffer).setUint32(0, Math.floor(tail.length / 2), true);
          bytes.set(tail, 8);
        }
        decodesCleanly(bytes);
      }),
      { numRuns: 400 },
    );
  });

  it('headers with arbitrary field values throw only SafetensorsError', () => {
    const field = fc.oneof(
      fc.constantFrom('F32', 'I32', 'U32', 'F16', 'toString', '__proto__', 'constructor', ''),
      fc.integer({ min: -4, max: 16 }),
      fc.double(),
      fc.array(fc.integer({ min: -2, max: 16 }), { maxLength: 3 }),
      fc.constantFrom(null, true, 2 ** 53, 1e300, [0, 2 ** 60]),
      fc.dictionary(fc.string({ maxLength: 3 }), fc.integer()),
    );
    const entry = fc.record({ dtype: field, shape: field, data_offsets: field }, { requiredKeys: [] });
    const name = fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom('__proto__', '__metadata__', 'toString', 'constructor'));
    fc.assert(
      fc.property(fc.array(fc.tuple(name, fc.oneof(entry, field)), { maxLength: 4 }), fc.uint8Array({ maxLength: 24 }), (pairs, data) => {
        const header: Record<string, unknown> = {};
        for (const [key, value] of pairs) Object.defineProperty(header, key, { value, enumerable: true, configurable: true, writable: true });
        decodesCleanly(rawFile(header, data));
      }),
      { numRuns: 600 },
    );
    // Near-valid files: one tensor whose fields all agree, then one field replaced by an arbitrary value, so
    // the reader gets past every other check and the odd field alone must be caught.
    const dtype = fc.constantFrom('F32', 'I32', 'U32', 'toString', '__proto__', 'constructor', 'valueOf', 'F16');
    fc.assert(
      fc.property(name, dtype, fc.nat(3), fc.constantFrom('dtype', 'shape', 'data_offsets', 'none'), field, (key, type, n, replaced, value) => {
        const tensor: Record<string, unknown> = { dtype: type, shape: [n], data_offsets: [0, 4 * n] };
        if (replaced !== 'none') tensor[replaced] = value;
        const header: Record<string, unknown> = {};
        Object.defineProperty(header, key, { value: tensor, enumerable: true });
        decodesCleanly(rawFile(header, new Uint8Array(4 * n)));
      }),
      { numRuns: 600 },
    );
  });

  it('a valid file with some bytes changed either throws SafetensorsError or decodes; data-only changes keep names and shapes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (edits) => {
        const bytes = valid.slice();
        for (const [position, value] of edits) bytes[position] = value;
        const decoded = decodesCleanly(bytes);
        if (edits.every(([position]) => position >= headerEnd)) {
          expect(decoded).not.toBeNull();
          for (const [entryName, entry] of Object.entries(entries)) {
            expect(decoded?.tensors[entryName].shape).toEqual(entry.shape);
            expect(decoded?.tensors[entryName].dtype).toBe(entry.dtype);
          }
        }
      }),
      { numRuns: 600 },
    );
  });
});

describe('saveSafetensors / loadSafetensors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'metagrad-ckpt-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes through a temporary file into new directories and reads back', () => {
    const path = join(dir, 'nested', 'run-1', 'model.safetensors');
    saveSafetensors(path, entries, { epoch: '3' });
    expect(existsSync(path)).toBe(true);
    expect(readdirSync(join(dir, 'nested', 'run-1'))).toEqual(['model.safetensors']);
    const loaded = loadSafetensors(path);
    expect(loaded.metadata).toEqual({ epoch: '3' });
    expect(Array.from(loaded.tensors['layers.0.bias'].data)).toEqual(Array.from(entries['layers.0.bias'].data));
    saveSafetensors(path, { only: { dtype: 'U32', shape: [2], data: Uint32Array.of(1, 2) } });
    expect(Object.keys(loadSafetensors(path).tensors)).toEqual(['only']);
  });

  it('removes the temporary file when the write fails, and rethrows the error', () => {
    const folder = join(dir, 'failing');
    // Renaming a file onto a non-empty directory fails (EISDIR), after the temporary file has been written.
    const target = join(folder, 'model.safetensors');
    mkdirSync(target, { recursive: true });
    writeFileSync(join(target, 'keep'), 'x');
    expect(() => saveSafetensors(target, entries)).toThrow(/EISDIR|ENOTEMPTY|EEXIST|EPERM/);
    expect(readdirSync(folder)).toEqual(['model.safetensors']);
    expect(readdirSync(target)).toEqual(['keep']);
  });

  it('a file larger than one buffer is a SafetensorsError, not a raw RangeError from readFileSync', () => {
    const path = join(dir, 'huge.safetensors');
    writeFileSync(path, encodeSafetensors(entries));
    truncateSync(path, 5 * 2 ** 30); // sparse: no disk space used, and the loader must not allocate it
    expect(() => loadSafetensors(path)).toThrow(SafetensorsError);
    expect(() => loadSafetensors(path)).toThrow(/is 5368709120 bytes, more than the \d+ bytes a checkpoint may have/);
    rmSync(path);
  });

  it('writes nothing when the entries are invalid', () => {
    const path = join(dir, 'invalid', 'model.safetensors');
    expect(() => saveSafetensors(path, { w: { dtype: 'F32', shape: [2], data: Float32Array.of(1) } })).toThrow(SafetensorsError);
    expect(existsSync(join(dir, 'invalid')) ? readdirSync(join(dir, 'invalid')) : []).toEqual([]);
  });
});
