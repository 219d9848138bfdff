/**
 * @file Node-only entry of @metagrad/models (`@metagrad/models/node`): everything that touches the file
 * system, kept out of the browser-safe main entry.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
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
 * Writes a safetensors file. It goes to a temporary file first and is renamed into place, so a run killed
 * mid-write never leaves a truncated checkpoint under the real name.
 */
export function saveSafetensors(path: string, entries: Record<string, SafetensorsEntry>, metadata?: Record<string, string>): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.tmp-${process.pid}`;
  writeFileSync(temporary, encodeSafetensors(entries, metadata));
  renameSync(temporary, path);
}

/** Reads and validates a safetensors file. */
export function loadSafetensors(path: string): SafetensorsContents {
  const raw = readFileSync(path);
  return decodeSafetensors(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
}
