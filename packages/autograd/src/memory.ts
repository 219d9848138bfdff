/** @file Memory statistics with the tape's share (live nodes, saved bytes) and leak assertions for tests. */
import { getDefaultDevice, type Device, type MemoryStats } from '@metagrad/tensor';
import { tapeStats } from './graph';

export interface AutogradMemoryStats extends MemoryStats {
  /** Live autograd nodes (leaves and recorded ops) on this device. */
  tapeNodes: number;
  /** Bytes of the distinct storages that recorded ops keep for their backward. */
  savedBytes: number;
}

export function memory(device: Device = getDefaultDevice()): AutogradMemoryStats {
  return { ...device.memory(), ...tapeStats(device) };
}

/** Something that should have been freed is still alive. */
export class LeakError extends Error {
  override name = 'LeakError';
}

const WATCHED = ['liveTensors', 'bytesInUse', 'tapeNodes', 'savedBytes'] as const;

/** Throws LeakError if live tensors, bytes in use, tape nodes or saved bytes grew since `before`. */
export function assertNoLeaks(device: Device, before: AutogradMemoryStats, what = 'code under test'): void {
  const now = memory(device);
  const grown = WATCHED.filter((k) => now[k] > before[k]);
  if (grown.length) {
    throw new LeakError(`${what} leaked: ${grown.map((k) => `${k} ${before[k]} → ${now[k]}`).join(', ')}`);
  }
}

/** Runs `fn` (sync or async) and asserts that everything it allocated was freed. */
export async function expectNoLeaks(fn: () => unknown, device: Device = getDefaultDevice(), what?: string): Promise<void> {
  const before = memory(device);
  await fn();
  assertNoLeaks(device, before, what);
}
