/**
 * @file Node-only entry of @metagrad/models (`@metagrad/models/node`): everything that touches the file
 * system, kept out of the browser-safe main entry.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type SafetensorsContents, type SafetensorsEntry, decodeSafetensors, encodeSafetensors } from './checkpoint';

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

/** Reads and validates a safetensors file. */
export function loadSafetensors(path: string): SafetensorsContents {
  const raw = readFileSync(path);
  return decodeSafetensors(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
}
