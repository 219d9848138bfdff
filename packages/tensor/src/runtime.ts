/** @file The default device that creation ops use when none is passed (set once by the application). */
import type { Device } from './device';

let defaultDevice: Device | null = null;

/** Makes `device` the one creation ops (`tensor`, `zeros`, random…) allocate on. */
export function setDefaultDevice(device: Device | null): void {
  defaultDevice = device;
}

export function getDefaultDevice(): Device {
  if (!defaultDevice || defaultDevice.isDestroyed) {
    throw new Error(
      'metagrad has no device: call setDefaultDevice(await Device.create({ gpu })) in a browser, or ' +
        "await initNodeDevice() from '@metagrad/tensor/node' in Node",
    );
  }
  return defaultDevice;
}

export function hasDefaultDevice(): boolean {
  return defaultDevice !== null && !defaultDevice.isDestroyed;
}
