/**
 * @file Node-only entry of @metagrad/models (`@metagrad/models/node`): everything that touches the file
 * system, kept out of the browser-safe main entry.
 */
import { constants as bufferConstants } from 'node:buffer';
import { closeSync, fsyncSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type SafetensorsContents, type SafetensorsEntry, SafetensorsError, decodeSafetensors, encodeSafetensors } from './checkpoint';

export {
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  type LoadFashionMnistOptions,
  loadFashionMnist,
  readIdxFile,
} from './data/fashion-mnist';

/**
 * Writes a safetensors file atomically and durably: the bytes go to a temporary file beside `path`, are
 * fsynced, and the file is renamed into place, then the directory is fsynced (where the platform can), so a
 * run killed mid-write or a power loss never leaves a truncated checkpoint under the real name. If any step
 * fails, the temporary file is removed and the error is rethrown; invalid entries throw SafetensorsError
 * before anything touches the disk.
 */
export function saveSafetensors(path: string, entries: Record<string, SafetensorsEntry>, metadata?: Record<string, string>): void {
  const bytes = encodeSafetensors(entries, metadata);
  const directory = dirname(path);
  mkdirSync(directory, { recursive: true });
  const temporary = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(temporary, 'w');
    try {
      writeFileSync(fd, bytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
  fsyncDirectory(directory);
}

/** Errors that mean "this platform or file system cannot fsync a directory", not "the data is at risk". */
const DIRECTORY_FSYNC_UNSUPPORTED = new Set(['EISDIR', 'EINVAL', 'ENOTSUP', 'EPERM', 'EACCES', 'EBADF']);

/** Makes the rename itself durable. Windows cannot open a directory for fsync, and some file systems refuse it. */
function fsyncDirectory(directory: string): void {
  if (process.platform === 'win32') return;
  let fd: number;
  try {
    fd = openSync(directory, 'r');
  } catch (error) {
    if (DIRECTORY_FSYNC_UNSUPPORTED.has((error as NodeJS.ErrnoException).code ?? '')) return;
    throw error;
  }
  try {
    fsyncSync(fd);
  } catch (error) {
    if (!DIRECTORY_FSYNC_UNSUPPORTED.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads and validates a safetensors file. It is read in chunks (readFileSync refuses files over 2 GiB with a raw
 * RangeError); a file larger than one buffer can hold is a SafetensorsError.
 */
export function loadSafetensors(path: string): SafetensorsContents {
  const size = statSync(path).size;
  if (size > MAX_CHECKPOINT_BYTES) {
    throw new SafetensorsError(`${path} is ${size} bytes, more than the ${MAX_CHECKPOINT_BYTES} bytes a checkpoint may have (one buffer)`);
  }
  const bytes = new Uint8Array(size);
  const fd = openSync(path, 'r');
  try {
    let offset = 0;
    while (offset < size) {
      const read = readSync(fd, bytes, offset, Math.min(READ_CHUNK_BYTES, size - offset), offset);
      if (read === 0) break; // the file shrank while we read it: decode what there is, which then fails by name
      offset += read;
    }
    return decodeSafetensors(offset === size ? bytes : bytes.subarray(0, offset));
  } finally {
    closeSync(fd);
  }
}

const READ_CHUNK_BYTES = 1 << 30;
/** One Uint8Array holds the file: 4 GiB, or less where the runtime's buffers are smaller. */
const MAX_CHECKPOINT_BYTES = Math.min(bufferConstants.MAX_LENGTH, 2 ** 32);
