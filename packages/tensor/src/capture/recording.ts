/** @file Step capture: while a Recording is attached to a device, every GPU command and replayable host step is kept. */
import type { KernelSpec } from '@metagrad/kernels-wgsl';
import type { Storage, Tensor } from '../tensor';

/** A uniform computed on the host at each call (an RNG offset, a scheduled lr): evaluated now and at every replay. */
export type UniformThunk = () => ArrayBufferView;

export type Command =
  | {
      readonly k: 'dispatch';
      readonly spec: KernelSpec;
      readonly buffers: readonly GPUBuffer[];
      /** The uniform bytes as recorded (null when the kernel has none). */
      readonly uniform: Uint8Array | null;
      /** Set when the uniform is volatile: replays call it again instead of reusing `uniform`. */
      readonly thunk: UniformThunk | null;
      readonly workgroups: readonly [number, number, number];
    }
  | {
      readonly k: 'copy';
      readonly src: GPUBuffer;
      readonly srcOffset: number;
      readonly dst: GPUBuffer;
      readonly dstOffset: number;
      readonly bytes: number;
    }
  | { readonly k: 'write'; readonly buffer: GPUBuffer; readonly offset: number; readonly data: Uint8Array }
  /** Host code that must run again at each replay (an optimiser's step counter): see Device.onReplay. */
  | { readonly k: 'hook'; readonly fn: () => void }
  /** An in-place write into a storage (its version counter moves at each replay, as eagerly). */
  | { readonly k: 'bump'; readonly storage: Storage };

/**
 * What one traced call of a compiled function did on its device: the commands in order, every storage and tensor
 * created meanwhile (to find what the call left alive), and the peak of `bytesInUse` above the start.
 */
export class Recording {
  readonly commands: Command[] = [];
  readonly storages: Storage[] = [];
  readonly tensors: Tensor[] = [];
  readonly startBytes: number;
  peakAboveStart = 0;

  constructor(startBytes: number) {
    this.startBytes = startBytes;
  }

  get dispatches(): number {
    let n = 0;
    for (const c of this.commands) if (c.k === 'dispatch') n++;
    return n;
  }
}
