/** @file Test helper: one device per test file, destroyed afterwards so the worker process can exit. */
import { afterAll, beforeAll } from 'vitest';
import { createNodeDevice } from '@metagrad/tensor/node';
import type { Device } from '@metagrad/tensor';

/** Registers beforeAll/afterAll hooks and returns a getter for the file's device. */
export function useDevice(): () => Device {
  let device: Device | undefined;
  beforeAll(async () => {
    device = await createNodeDevice();
  });
  afterAll(() => device?.destroy());
  return () => {
    if (!device) throw new Error('device not ready (useDevice hooks not run)');
    return device;
  };
}
