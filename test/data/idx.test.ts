/** @file IDX parsing/encoding round trips and the Fashion-MNIST loader's errors, on small synthetic files. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError, ShapeError } from '@metagrad/tensor';
import { CorruptDatasetError, DatasetNotFoundError } from '../../packages/models/src/data/errors';
import { type IdxArray, type IdxDtype, encodeIdx, parseIdx } from '../../packages/models/src/data/idx';
import { loadFashionMnist, readIdxFile } from '../../packages/models/src/node';

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'metagrad-idx-'));
  tempDirs.push(dir);
  return dir;
}
afterAll(() => tempDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** n synthetic h×w images whose pixel values encode (example, row, col), and labels i mod 10. */
function synthetic(n: number, h = 28, w = 28): { images: IdxArray; labels: IdxArray } {
  const pixels = new Uint8Array(n * h * w);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7 + 3) % 256;
  const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
  return {
    images: { dtype: 'uint8', shape: [n, h, w], data: pixels },
    labels: { dtype: 'uint8', shape: [n], data: labels },
  };
}

function writeSplit(dir: string, split: 'train' | 'test', images: Uint8Array, labels: Uint8Array, gzip: boolean): void {
  const prefix = split === 'train' ? 'train' : 't10k';
  const suffix = gzip ? '.gz' : '';
  writeFileSync(join(dir, `${prefix}-images-idx3-ubyte${suffix}`), gzip ? gzipSync(images) : images);
  writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte${suffix}`), gzip ? gzipSync(labels) : labels);
}

describe('parseIdx / encodeIdx', () => {
  const cases: [IdxDtype, ArrayLike<number>][] = [
    ['uint8', [0, 1, 255, 128, 7, 9]],
    ['int8', [-128, 127, 0, -1, 5, 6]],
    ['int16', [-32768, 32767, 0, -2, 300, -300]],
    ['int32', [-2147483648, 2147483647, 0, 1, -1, 65536]],
    ['float32', [0.5, -1.25, 3e-8, 1e20, -0, 7]],
    ['float64', [Math.PI, -Math.E, 1e-300, 1e300, 0, 42]],
  ];
  for (const [dtype, values] of cases) {
    it(`round-trips ${dtype} (big-endian on disk)`, () => {
      const Ctor = {
        uint8: Uint8Array,
        int8: Int8Array,
        int16: Int16Array,
        int32: Int32Array,
        float32: Float32Array,
        float64: Float64Array,
      }[dtype];
      const array: IdxArray = { dtype, shape: [2, 3], data: Ctor.from(values) };
      const bytes = encodeIdx(array);
      expect(Array.from(bytes.subarray(0, 4))).toEqual([0, 0, { uint8: 8, int8: 9, int16: 11, int32: 12, float32: 13, float64: 14 }[dtype], 2]);
      expect(Array.from(bytes.subarray(4, 12))).toEqual([0, 0, 0, 2, 0, 0, 0, 3]);
      const parsed = parseIdx(bytes);
      expect(parsed.dtype).toBe(dtype);
      expect(parsed.shape).toEqual([2, 3]);
      expect(parsed.data).toBeInstanceOf(Ctor);
      expect(Array.from(parsed.data)).toEqual(Array.from(array.data));
    });
  }

  it('reads the first bytes of a known MNIST-style header', () => {
    // 00 00 08 03 | 0000ea60 (60000) | 0000001c | 0000001c: the train-images header.
    const header = Uint8Array.from([0, 0, 8, 3, 0, 0, 0xea, 0x60, 0, 0, 0, 28, 0, 0, 0, 28]);
    expect(() => parseIdx(header)).toThrow(/truncated.*\[60000, 28, 28\].*47040016 bytes, file has 16/);
  });

  it('rejects bad magic, truncation, trailing bytes and gzip input with CorruptDatasetError', () => {
    const good = encodeIdx({ dtype: 'uint8', shape: [4], data: Uint8Array.of(1, 2, 3, 4) });
    const expectCorrupt = (bytes: Uint8Array, pattern: RegExp) => {
      expect(() => parseIdx(bytes, 'x.idx')).toThrow(CorruptDatasetError);
      expect(() => parseIdx(bytes, 'x.idx')).toThrow(pattern);
    };
    expectCorrupt(Uint8Array.of(0, 0), /shorter than its 4-byte magic/);
    expectCorrupt(Uint8Array.of(1, 0, 8, 1, 0, 0, 0, 0), /bad IDX magic 01 00 08 01/);
    expectCorrupt(Uint8Array.of(0, 0, 0x42, 1, 0, 0, 0, 0), /unknown type code 0x42/);
    expectCorrupt(Uint8Array.of(0, 0, 8, 0), /rank 0/);
    expectCorrupt(Uint8Array.of(0, 0, 8, 3, 0, 0, 0, 1), /header truncated/);
    expectCorrupt(good.subarray(0, good.length - 1), /data truncated/);
    expectCorrupt(Uint8Array.from([...good, 9]), /size mismatch/);
    expectCorrupt(gzipSync(good), /still gzip-compressed/);
    expect(() => parseIdx(Uint8Array.of(9, 9, 9, 9), 'some/file')).toThrow(/^some\/file: bad IDX magic/);
  });

  it('random bytes and mutated valid files either parse or throw CorruptDatasetError, never another error', () => {
    const valid = encodeIdx({ dtype: 'int16', shape: [2, 3], data: Int16Array.of(1, -2, 300, 4, 5, -32768) });
    const parsesCleanly = (bytes: Uint8Array): void => {
      try {
        const parsed = parseIdx(bytes);
        // Whatever parses must re-encode to the very same bytes.
        expect(Array.from(encodeIdx(parsed))).toEqual(Array.from(bytes));
      } catch (error) {
        if (!(error instanceof CorruptDatasetError)) throw error;
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), parsesCleanly), { numRuns: 500 });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }), (edits) => {
        const bytes = valid.slice();
        for (const [position, value] of edits) bytes[position] = value;
        parsesCleanly(bytes);
      }),
      { numRuns: 500 },
    );
  });

  it('encodeIdx refuses values and shapes it would otherwise write wrong (a uint8 300 stored as 44), with named errors', () => {
    const encode = (array: unknown) => () => encodeIdx(array as IdxArray);
    expect(encode({ dtype: 'uint8', shape: [2], data: Int32Array.of(1, 300) })).toThrow(/element 1 is 300, not an integer in uint8's range \[0, 255\]/);
    for (const bad of [
      { dtype: 'uint8', shape: [2], data: Int32Array.of(1, 300) },
      { dtype: 'uint8', shape: [1], data: Int32Array.of(-1) },
      { dtype: 'int8', shape: [1], data: Float32Array.of(0.5) },
      { dtype: 'int16', shape: [1], data: Float64Array.of(Number.NaN) },
      { dtype: 'int32', shape: [1], data: Float64Array.of(2 ** 31) },
      { dtype: 'toString', shape: [1], data: Uint8Array.of(1) },
      { dtype: 'f32', shape: [1], data: Float32Array.of(1) },
      { dtype: 7, shape: [1], data: Uint8Array.of(1) },
      { dtype: 'float32', shape: [2], data: [1, '2'] },
      { dtype: 'float32', shape: [1], data: null },
      null,
    ]) {
      expect(encode(bad), JSON.stringify(bad)).toThrow(InvalidArgumentError);
    }
    expect(encode({ dtype: 'toString', shape: [1], data: Uint8Array.of(1) })).toThrow(/unknown dtype toString \(uint8, int8, int16, int32, float32, float64\)/);
    expect(encode({ dtype: 'float32', shape: [2], data: [1, '2'] })).toThrow(/element 1 is "2", not a number/);
    for (const bad of [
      { dtype: 'uint8', shape: [1.5], data: Uint8Array.of(1) },
      { dtype: 'uint8', shape: [2 ** 32, 0], data: new Uint8Array(0) },
      { dtype: 'uint8', shape: [], data: Uint8Array.of(1) },
      { dtype: 'uint8', shape: [3], data: Uint8Array.of(1) },
      { dtype: 'uint8', shape: 3, data: Uint8Array.of(1, 2, 3) },
    ]) {
      expect(encode(bad), JSON.stringify(bad)).toThrow(ShapeError);
    }
    expect(encode({ dtype: 'uint8', shape: [1.5], data: Uint8Array.of(1) })).toThrow(/must be integers/);
    expect(encode({ dtype: 'uint8', shape: [2 ** 32, 0], data: new Uint8Array(0) })).toThrow(/must be integers in 0..4294967295/);
    expect(encode({ dtype: 'uint8', shape: [3], data: Uint8Array.of(1) })).toThrow(/shape \[3\] has 3 elements, data has 1/);
    // A plain array of numbers is fine.
    expect(Array.from(parseIdx(encodeIdx({ dtype: 'int16', shape: [2], data: [-5, 7] as unknown as Int16Array })).data)).toEqual([-5, 7]);
    // Float types store any value, NaN included.
    expect(Array.from(parseIdx(encodeIdx({ dtype: 'float32', shape: [2], data: Float32Array.of(Number.NaN, -Infinity) })).data)).toEqual([NaN, -Infinity]);
  });
});

describe('loadFashionMnist on synthetic files', () => {
  for (const gzip of [true, false]) {
    it(`loads ${gzip ? 'gzipped' : 'plain'} IDX files, scales to [0, 1], honours limit`, () => {
      const dir = tempDir();
      const { images, labels } = synthetic(12);
      writeSplit(dir, 'test', encodeIdx(images), encodeIdx(labels), gzip);
      const data = loadFashionMnist({ dir, split: 'test' });
      expect(data.n).toBe(12);
      expect([data.height, data.width]).toEqual([28, 28]);
      expect(data.images).toBeInstanceOf(Float32Array);
      expect(data.images.length).toBe(12 * 28 * 28);
      for (const i of [0, 1, 500, data.images.length - 1]) expect(data.images[i]).toBeCloseTo(images.data[i] / 255, 7);
      expect(Array.from(data.labels)).toEqual(Array.from(labels.data));
      const limited = loadFashionMnist({ dir, split: 'test', limit: 5 });
      expect(limited.n).toBe(5);
      expect(Array.from(limited.images)).toEqual(Array.from(data.images.subarray(0, 5 * 784)));
      expect(Array.from(limited.labels)).toEqual([0, 1, 2, 3, 4]);
    });
  }

  it('names the Debian package and the directory when the files are missing', () => {
    const dir = tempDir();
    const attempt = () => loadFashionMnist({ dir, split: 'train' });
    expect(attempt).toThrow(DatasetNotFoundError);
    expect(attempt).toThrow('sudo apt-get install dataset-fashion-mnist');
    expect(attempt).toThrow(dir);
    expect(attempt).toThrow(/train-images-idx3-ubyte\.gz, train-labels-idx1-ubyte\.gz/);
    // Only the labels missing: only they are named.
    const { images } = synthetic(2);
    writeFileSync(join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(encodeIdx(images)));
    expect(attempt).toThrow(/missing train-labels-idx1-ubyte\.gz\./);
  });

  it('rejects a split that is only a key of Object.prototype', () => {
    for (const split of ['toString', 'constructor', '__proto__']) {
      expect(() => loadFashionMnist({ dir: tempDir(), split: split as 'train' })).toThrow(`split must be 'train' or 'test', got ${split}`);
    }
  });

  it('rejects inconsistent counts, wrong image size, bad labels, truncated gzip', () => {
    const cases: [string, (dir: string) => void, RegExp][] = [
      ['counts', (dir) => writeSplit(dir, 'train', encodeIdx(synthetic(5).images), encodeIdx(synthetic(4).labels), true), /5 images but 4 labels/],
      ['size', (dir) => writeSplit(dir, 'train', encodeIdx(synthetic(3, 14, 14).images), encodeIdx(synthetic(3).labels), true), /14×14, expected 28×28/],
      [
        'label range',
        (dir) => writeSplit(dir, 'train', encodeIdx(synthetic(2).images), encodeIdx({ dtype: 'uint8', shape: [2], data: Uint8Array.of(3, 10) }), false),
        /label 10 at example 1 is not in \[0, 10\)/,
      ],
      [
        'label rank',
        (dir) => writeSplit(dir, 'train', encodeIdx(synthetic(2).images), encodeIdx({ dtype: 'uint8', shape: [2, 1], data: Uint8Array.of(3, 1) }), false),
        /labels must be a rank-1 uint8/,
      ],
      [
        'truncated gzip',
        (dir) => {
          writeSplit(dir, 'train', encodeIdx(synthetic(3).images), encodeIdx(synthetic(3).labels), true);
          const path = join(dir, 'train-images-idx3-ubyte.gz');
          const gz = gzipSync(encodeIdx(synthetic(3).images));
          writeFileSync(path, gz.subarray(0, gz.length >> 1));
        },
        /train-images-idx3-ubyte\.gz: gzip stream is corrupt or truncated/,
      ],
      [
        'truncated payload',
        (dir) => {
          const bytes = encodeIdx(synthetic(3).images);
          writeSplit(dir, 'train', bytes.subarray(0, bytes.length - 100), encodeIdx(synthetic(3).labels), true);
        },
        /IDX data truncated/,
      ],
    ];
    for (const [, write, pattern] of cases) {
      const dir = tempDir();
      write(dir);
      const attempt = () => loadFashionMnist({ dir, split: 'train' });
      expect(attempt).toThrow(CorruptDatasetError);
      expect(attempt).toThrow(pattern);
    }
  });

  it('readIdxFile sniffs gzip by content, not by name', () => {
    const dir = tempDir();
    const path = join(dir, 'weird-name.idx');
    writeFileSync(path, gzipSync(encodeIdx({ dtype: 'int32', shape: [3], data: Int32Array.of(-1, 0, 1) })));
    expect(Array.from(readIdxFile(path).data)).toEqual([-1, 0, 1]);
  });
});
