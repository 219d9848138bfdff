/** @file The lazy-fusion switch: METAGRAD_FUSION=1 (env) or globalThis.METAGRAD_FUSION = true, per device overridable. */
import type { Device } from '../device';

let envDefault: boolean | undefined;
let globalOverride: boolean | undefined;
const perDevice = new WeakMap<Device, boolean>();

function readEnv(): boolean {
  const g = globalThis as { METAGRAD_FUSION?: unknown; process?: { env?: Record<string, string | undefined> } };
  if (g.METAGRAD_FUSION !== undefined) return g.METAGRAD_FUSION === true || g.METAGRAD_FUSION === '1';
  return g.process?.env?.METAGRAD_FUSION === '1';
}

/**
 * Turns lazy elementwise fusion on or off for one device or for every device ('global'); `undefined` clears the
 * override (back to the environment's METAGRAD_FUSION, read once). Default: off in this release.
 */
export function setFusion(target: Device | 'global', on: boolean | undefined): void {
  if (target === 'global') globalOverride = on;
  else if (on === undefined) perDevice.delete(target);
  else perDevice.set(target, on);
}

/** Whether elementwise ops on `device` build pending expressions instead of dispatching. */
export function fusionEnabled(device: Device): boolean {
  const own = perDevice.get(device);
  if (own !== undefined) return own;
  if (globalOverride !== undefined) return globalOverride;
  return (envDefault ??= readEnv());
}

/** The per-device override set with setFusion (undefined when the device follows the global/env default). */
export function fusionOverride(device: Device): boolean | undefined {
  return perDevice.get(device);
}
