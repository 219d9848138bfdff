/** @file The default device that creation ops use when none is passed (set once by the application). */
import type { Device } from './device';
import { DeviceLostError } from './errors';

let defaultDevice: Device | null = null;

/** Makes `device` the one creation ops (`tensor`, `zeros`, random…) allocate on. */
export function setDefaultDevice(device: Device | null): void {
  defaultDevice = device;
}

export function getDefaultDevice(): Device {
  if (!defaultDevice || defaultDevice.isDestroyed) {
    const how =
      'call setDefaultDevice(await Device.create({ gpu })) in a browser, or ' +
      "await createNodeDevice() from '@metagrad/tensor/node' in Node (it becomes the default)";
    if (defaultDevice) throw new DeviceLostError(`the default device ${defaultDevice} was destroyed: ${how}`, 'destroyed');
    throw new Error(`metagrad has no device: ${how}`);
  }
  return defaultDevice;
}

export function hasDefaultDevice(): boolean {
  return defaultDevice !== null && !defaultDevice.isDestroyed;
}
