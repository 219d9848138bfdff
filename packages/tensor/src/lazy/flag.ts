/** @file The lazy-fusion switch: on unless METAGRAD_FUSION=0 (env) or globalThis.METAGRAD_FUSION = false; per device overridable. */
import type { Device } from '../device';

let envDefault: boolean | undefined;
let globalOverride: boolean | undefined;
const perDevice = new WeakMap<Device, boolean>();

function readEnv(): boolean {
  const g = globalThis as { METAGRAD_FUSION?: unknown; process?: { env?: Record<string, string | undefined> } };
  if (g.METAGRAD_FUSION !== undefined) return !(g.METAGRAD_FUSION === false || g.METAGRAD_FUSION === '0');
  return g.process?.env?.METAGRAD_FUSION !== '0';
}

/**
 * Turns lazy elementwise fusion on or off for one device or for every device ('global'); `undefined` clears the
 * override (back to the environment's METAGRAD_FUSION, read once). Default: on (bench compile's eager-fused column:
 * faster than op by op on 8 of 11 workloads; MWN plain and the MLP step, slower there, are faster in a 20-round A/B).
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
