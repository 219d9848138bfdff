/** @file Test helper: one device per test file, destroyed afterwards so the worker process can exit. */
import { afterAll, beforeAll } from 'vitest';
import { createNodeDevice } from '@metagrad/tensor/node';
import { setFusion, type Device } from '@metagrad/tensor';

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

/**
 * Runs `fn` with lazy fusion pinned on or off for `device`, whatever METAGRAD_FUSION says, and unpins it afterwards
 * (after the promise settles when `fn` is async).
 */
export function withFusion<T>(device: Device, on: boolean, fn: () => T): T {
  setFusion(device, on);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    setFusion(device, undefined);
    throw e;
  }
  if (result instanceof Promise) return result.finally(() => setFusion(device, undefined)) as T;
  setFusion(device, undefined);
  return result;
}
