/** @file safetensors encoding/decoding: round trips, layout details, malformed headers, and the node file helpers. */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    const bytes = encodeSafetensors({ b: { dtype: 'F32', shape: [1], data: Float32Array.of(2) }, a: { dtype: 'I32', shape: [2], data: Int32Array.of(1, 258) } });
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
    const reordered = encodeSafetensors({ a: { dtype: 'I32', shape: [2], data: Int32Array.of(1, 258) }, b: { dtype: 'F32', shape: [1], data: Float32Array.of(2) } });
    expect(Array.from(reordered)).toEqual(Array.from(bytes));
  });

  it('reads files from other writers: unpadded header, arbitrary key order, unaligned data; copies the data out', () => {
    const data = new Uint8Array(new Float32Array([1.5, -2.5, 7]).buffer);
    const file = rawFile({ y: { dtype: 'F32', shape: [1], data_offsets: [8, 12] }, __metadata__: { k: 'v' }, x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, data);
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
    const encode = (entry: unknown, name = 'w') => () => encodeSafetensors({ [name]: entry as SafetensorsEntry });
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
        rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)),
        /tensor "b" bytes \[4, 8\) overlap "a" \(ends at 8\)/,
      ],
      [rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8)), /gap in the data section: \(start of data\) ends at 0 but "a" starts at 4/],
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
});
