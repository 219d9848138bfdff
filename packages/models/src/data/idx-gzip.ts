/**
 * @file Node-only gunzip of an IDX file with the inflated size capped by what its own header announces, so a
 * small gzip bomb is rejected after inflating at most its announced size (plus a 1 MiB header probe), not
 * hundreds of megabytes.
 */
import { constants as bufferConstants } from 'node:buffer';
import { constants as zlibConstants, gunzipSync } from 'node:zlib';
import { CorruptDatasetError } from './errors';
import { MAX_IDX_HEADER_BYTES, readIdxHeader } from './idx';

/** The most a header probe may inflate; any valid IDX header lies in the first 1,024 inflated bytes. */
const PROBE_OUTPUT_CAP = 1 << 20;

/**
 * Gunzips `bytes` (a gzip stream holding one IDX file). The header is read first from a probe of the stream,
 * then the whole stream is inflated with `maxOutputLength` equal to the header's announced file size:
 * a stream that inflates past it throws CorruptDatasetError with both sizes. A stream that inflates to less
 * is returned as is, for parseIdx to report as truncated.
 */
export function inflateIdxGzip(bytes: Uint8Array, source: string): Uint8Array {
  const head = inflateHead(bytes, source);
  const header = readIdxHeader(head, source);
  // Too short to hold a header: the whole stream inflates to under 1 KiB, so inflating it all is harmless.
  const announced = header === null ? MAX_IDX_HEADER_BYTES : header.totalBytes;
  const described = header === null ? 'a stream shorter than an IDX header' : `shape [${header.shape.join(', ')}] of ${header.dtype}`;
  if (announced > bufferConstants.MAX_LENGTH) {
    throw new CorruptDatasetError(
      `IDX header announces ${described} = ${announced} bytes, more than this runtime's ${bufferConstants.MAX_LENGTH}-byte buffer limit`,
      source,
    );
  }
  const out = gunzip(bytes, { maxOutputLength: announced }, source);
  if (out === null) {
    throw new CorruptDatasetError(
      `gzip stream (${bytes.length} bytes) inflates past the ${announced} bytes its IDX header announces (${described}); refusing to inflate further`,
      source,
    );
  }
  return out;
}

/**
 * The first inflated bytes (at least MAX_IDX_HEADER_BYTES when the stream holds that many), never inflating
 * more than PROBE_OUTPUT_CAP: prefixes of the compressed stream are inflated with a sync flush, growing while
 * they yield too little and bisecting when one yields past the cap (a long gzip name field or a bomb).
 */
function inflateHead(bytes: Uint8Array, source: string): Uint8Array {
  let yieldsTooLittle = 0;
  let yieldsTooMuch = Number.POSITIVE_INFINITY;
  let length = Math.min(bytes.length, 256);
  for (let probe = 0; probe < 64; probe++) {
    const out = gunzip(bytes.subarray(0, length), { maxOutputLength: PROBE_OUTPUT_CAP, finishFlush: zlibConstants.Z_SYNC_FLUSH }, source);
    if (out !== null && (out.length >= MAX_IDX_HEADER_BYTES || length === bytes.length)) return out;
    if (out === null) yieldsTooMuch = length;
    else yieldsTooLittle = length;
    const next = Number.isFinite(yieldsTooMuch) ? Math.floor((yieldsTooLittle + yieldsTooMuch) / 2) : Math.min(bytes.length, 2 * length);
    if (next === length || next === yieldsTooLittle) break;
    length = next;
  }
  throw new CorruptDatasetError(`could not read an IDX header from the gzip stream without inflating over ${PROBE_OUTPUT_CAP} bytes`, source);
}

/** gunzipSync that returns null when the output would pass `maxOutputLength` and names corrupt streams. */
function gunzip(bytes: Uint8Array, options: { maxOutputLength: number; finishFlush?: number }, source: string): Uint8Array | null {
  try {
    const out = gunzipSync(bytes, options);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return null;
    throw new CorruptDatasetError(`gzip stream is corrupt or truncated (${(error as Error).message})`, source);
  }
}
