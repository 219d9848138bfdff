/** @file Gzipped IDX files inflate only as far as their header announces: bombs are rejected early and named. */
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { CorruptDatasetError } from '../../packages/models/src/data/errors';
import { encodeIdx } from '../../packages/models/src/data/idx';
import { readIdxFile } from '../../packages/models/src/node';

/** Bytes each gunzipSync call produced (or, when it refused, the cap it refused at). */
const inflated: number[] = [];

vi.mock('node:zlib', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:zlib')>();
  return {
    ...actual,
    gunzipSync: (buffer: zlib.InputType, options?: zlib.ZlibOptions) => {
      try {
        const out = actual.gunzipSync(buffer, options);
        inflated.push(out.length);
        return out;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') inflated.push(options?.maxOutputLength ?? Number.NaN);
        throw error;
      }
    },
  };
});

const dir = mkdtempSync(join(tmpdir(), 'metagrad-idx-gzip-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  inflated.length = 0;
});

/** A gzip stream with an FNAME field of `nameLength` bytes (RFC 1952 flag bit 3) in front of the deflate data. */
function gzipWithName(payload: Uint8Array, nameLength: number): Uint8Array {
  const plain = zlib.gzipSync(payload);
  const header = plain.slice(0, 10);
  header[3] |= 0x08;
  const name = new Uint8Array(nameLength + 1).fill(0x61);
  name[nameLength] = 0;
  const out = new Uint8Array(plain.length + name.length);
  out.set(header, 0);
  out.set(name, 10);
  out.set(plain.subarray(10), 10 + name.length);
  return out;
}

function write(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

const images = encodeIdx({
  dtype: 'uint8',
  shape: [10, 28, 28],
  data: Uint8Array.from({ length: 7840 }, (_, i) => (i * 13) % 256),
});
const announced = images.length; // 7856 bytes: the 16-byte header and 10 images

/** A valid header for 10 images followed by 64 MiB of zeros: about 64 KiB compressed. */
function bomb(): Uint8Array {
  const payload = new Uint8Array(64 << 20);
  payload.set(images);
  return payload;
}

describe('readIdxFile on gzip streams', () => {
  it('loads a gzipped file, including one with a long gzip name field in front of the data', () => {
    for (const [name, bytes] of [
      ['plain.gz', zlib.gzipSync(images)],
      ['named.gz', gzipWithName(images, 200_000)],
    ] as const) {
      const array = readIdxFile(write(name, bytes));
      expect(array.shape).toEqual([10, 28, 28]);
      expect(Array.from(array.data.subarray(0, 5))).toEqual([0, 13, 26, 39, 52]);
    }
  });

  it('rejects a gzip bomb with CorruptDatasetError after inflating about what the header announces', () => {
    const compressed = zlib.gzipSync(bomb());
    for (const [name, bytes] of [
      ['bomb.gz', compressed],
      ['named-bomb.gz', gzipWithName(bomb(), 200_000)],
    ] as const) {
      inflated.length = 0;
      const path = write(name, bytes);
      expect(() => readIdxFile(path), name).toThrow(CorruptDatasetError);
      expect(() => readIdxFile(path), name).toThrow(`inflates past the ${announced} bytes its IDX header announces (shape [10, 28, 28] of uint8)`);
      // Probes are capped at 1 MiB each and the full inflate at the announced size: far below the 64 MiB payload.
      const total = inflated.reduce((a, b) => a + b, 0);
      expect(total, name).toBeLessThan(16 << 20);
      expect(compressed.length).toBeLessThan(100_000);
    }
  });

  it('rejects a header announcing more than a buffer can hold before inflating the data', () => {
    const header = Uint8Array.of(0, 0, 0x0e, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    const payload = new Uint8Array(8 << 20);
    payload.set(header);
    const path = write('huge.gz', zlib.gzipSync(payload));
    expect(() => readIdxFile(path)).toThrow(CorruptDatasetError);
    expect(() => readIdxFile(path)).toThrow(/announces shape \[4294967295, 4294967295\] of float64 = .* bytes, more than this runtime's \d+-byte buffer limit/);
  });

  it('names a corrupt or truncated stream, and a stream shorter than a header', () => {
    const good = zlib.gzipSync(images);
    expect(() => readIdxFile(write('cut.gz', good.subarray(0, good.length - 9)))).toThrow(/gzip stream is corrupt or truncated/);
    const garbled = good.slice();
    garbled[12] ^= 0xff;
    expect(() => readIdxFile(write('garbled.gz', garbled))).toThrow(CorruptDatasetError);
    expect(() => readIdxFile(write('tiny.gz', zlib.gzipSync(Uint8Array.of(0, 0, 8, 3, 0))))).toThrow(/IDX header truncated/);
    expect(() => readIdxFile(write('empty.gz', zlib.gzipSync(new Uint8Array(0))))).toThrow(CorruptDatasetError);
  });

  it('judges a 3 GiB file by its size and header instead of failing to read it with a raw RangeError', () => {
    // Sparse files: no disk space is used. A plain IDX header for 10 images, then 3 GiB of nothing.
    const plain = write('huge-plain', images.subarray(0, 16));
    truncateSync(plain, 3 * 2 ** 30);
    expect(() => readIdxFile(plain)).toThrow(CorruptDatasetError);
    expect(() => readIdxFile(plain)).toThrow(`IDX size mismatch: shape [10, 28, 28] of uint8 needs ${announced} bytes, file has ${3 * 2 ** 30}`);
    const gz = write('huge.gz', zlib.gzipSync(images));
    truncateSync(gz, 3 * 2 ** 30);
    expect(() => readIdxFile(gz)).toThrow(/file is 3221225472 bytes, more than the 2147483647 bytes an IDX file may have/);
    rmSync(plain);
    rmSync(gz);
  });
});
