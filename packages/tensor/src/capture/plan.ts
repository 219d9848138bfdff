/**
 * @file A compiled step's plan: one traced call's commands rebound to plan-owned buffers, replayed in one submit.
 *
 * Every buffer the trace touched is classified once: the index-bounds flags (the device's own), an argument (copied
 * into a plan slot before each replay and back out if the step wrote it), a held storage (a tensor from fn's closure
 * that was alive before and after the call: bound as is, kept alive by the plan), or a buffer born and freed inside
 * the call, or an output (renamed to a plan buffer: the pool's reuse during the trace is the arena's liveness plan,
 * since the same commands run in the same order). Outputs are copied into fresh storages at the end of each replay, so
 * results never alias earlier calls.
 */
import type { Device } from '../device';
import { TraceError } from '../errors';
import { Storage } from '../tensor';
import type { Recording, UniformThunk } from './recording';

const UNIFORM = 0x40;
const COPY_SRC = 0x04;
const COPY_DST = 0x08;
const COPY = ['read', 'write'] as const;

/** What a replay encodes, in order: dispatches (grouped into passes) and buffer copies. */
type Step =
  | {
      readonly k: 'dispatch';
      readonly pipeline: GPUComputePipeline;
      readonly group: GPUBindGroup;
      readonly offsets: number[];
      readonly wg: readonly [number, number, number];
    }
  | {
      readonly k: 'copy';
      readonly src: GPUBuffer;
      readonly srcOffset: number;
      readonly dst: GPUBuffer;
      readonly dstOffset: number;
      readonly bytes: number;
    };

/** Host work of a replay, in trace order: hooks, volatile uniforms, version bumps. */
type HostStep =
  | { readonly k: 'hook'; readonly fn: () => void }
  | { readonly k: 'uniform'; readonly offset: number; readonly size: number; readonly thunk: UniformThunk }
  | { readonly k: 'bumpHeld'; readonly storage: Storage }
  | { readonly k: 'bumpArg'; readonly arg: number };

/** Where an output's values are at the end of a replay. */
type OutputSource = { readonly buffer: GPUBuffer } | { readonly arg: number };

export interface PlanStats {
  dispatches: number;
  kernels: number;
  /** Bytes of plan-owned storage buffers (arena, argument slots). */
  arenaBytes: number;
  /** Plus the uniform and constant-upload buffers. */
  totalBytes: number;
}

/** Trace storages an argument occupied; outputs; and the trace itself. */
export interface PlanInput {
  readonly recording: Recording;
  /** Distinct storages of the traced call's tensor arguments (realised before the trace). */
  readonly args: readonly Storage[];
  /** Storage of each output tensor, realised (may be an argument's or a held one). */
  readonly outputs: readonly Storage[];
}

export class Plan {
  private readonly steps: Step[] = [];
  private readonly host: HostStep[] = [];
  private readonly ops: { bindings: readonly string[]; buffers: readonly GPUBuffer[] }[] = [];
  private readonly argSlots: GPUBuffer[] = [];
  private readonly writtenArgs = new Set<number>();
  private readonly owned: GPUBuffer[] = [];
  private readonly held: Storage[] = [];
  private readonly outputSources: OutputSource[] = [];
  private readonly outputBytes: number[];
  private readonly uniformBuffer: GPUBuffer | null = null;
  private readonly uniformStaging: Uint8Array;
  private readonly constBuffer: GPUBuffer | null = null;
  private readonly peakAboveStart: number;
  readonly stats: PlanStats;
  private disposed = false;

  constructor(
    readonly device: Device,
    input: PlanInput,
  ) {
    const { recording: rec, args, outputs } = input;
    this.peakAboveStart = rec.peakAboveStart;
    this.outputBytes = outputs.map((s) => s.byteSize);
    const created = new Set(rec.storages);
    const argIndex = new Map<GPUBuffer, number>();
    args.forEach((s, i) => argIndex.set(s.buffer, i));

    // Roles: rename[b] is the plan buffer standing for trace buffer b (itself for held and device buffers).
    const rename = new Map<GPUBuffer, GPUBuffer>();
    const heldSet = new Set<Storage>();
    const firstUseIsRead: GPUBuffer[] = [];
    const written = new Set<GPUBuffer>();
    const role = (b: GPUBuffer): GPUBuffer => {
      const known = rename.get(b);
      if (known) return known;
      let to: GPUBuffer;
      const arg = argIndex.get(b);
      if (device.isDeviceBuffer(b)) to = b;
      else if (arg !== undefined) to = this.argSlots[arg] ??= this.acquire(b.size);
      else {
        const owner = device.ownerOf(b);
        if (owner?.isAlive && !created.has(owner)) {
          // A closure tensor alive across the call: bound by reference, kept alive while the plan lives.
          if (!heldSet.has(owner)) {
            heldSet.add(owner);
            this.held.push(owner.retain());
          }
          to = b;
        } else {
          to = this.acquire(b.size);
        }
      }
      rename.set(b, to);
      return to;
    };
    const noteRead = (b: GPUBuffer): void => {
      if (!written.has(b) && !rename.has(b)) firstUseIsRead.push(b);
    };
    const noteWrite = (b: GPUBuffer): void => {
      written.add(b);
      const arg = argIndex.get(b);
      if (arg !== undefined) this.writtenArgs.add(arg);
    };

    // Uniforms: one buffer for the whole plan at aligned offsets, written once (volatile ones at each replay).
    const align = device.uniformAlign;
    let uniformBytes = 0;
    const uniformAt: number[] = [];
    for (const c of rec.commands) {
      if (c.k !== 'dispatch' || !c.uniform) continue;
      uniformAt.push(uniformBytes);
      uniformBytes = alignTo(uniformBytes + alignTo(c.uniform.byteLength, 16), align);
    }
    this.uniformStaging = new Uint8Array(Math.max(uniformBytes, 16));
    let constBytes = 0;
    for (const c of rec.commands) if (c.k === 'write') constBytes += alignTo(c.data.byteLength, 4);
    const constStaging = new Uint8Array(Math.max(constBytes, 4));
    if (uniformBytes)
      this.uniformBuffer = device.gpuDevice.createBuffer({
        size: uniformBytes,
        usage: UNIFORM | COPY_DST,
        label: 'compiled-uniforms',
      });
    if (constBytes)
      this.constBuffer = device.gpuDevice.createBuffer({
        size: constBytes,
        usage: COPY_SRC | COPY_DST,
        label: 'compiled-constants',
      });

    const groups = new Map<string, GPUBindGroup>();
    const ids = new Map<GPUBuffer, number>();
    const idOf = (b: GPUBuffer): number => {
      let id = ids.get(b);
      if (id === undefined) ids.set(b, (id = ids.size));
      return id;
    };
    const kernels = new Set<string>();
    let u = 0;
    let constAt = 0;
    let dispatches = 0;
    for (const c of rec.commands) {
      switch (c.k) {
        case 'dispatch': {
          let b = 0;
          for (const kind of c.spec.bindings) {
            if (kind === 'uniform') continue;
            const buf = c.buffers[b++];
            if (kind === 'read') noteRead(buf);
            else noteWrite(buf);
          }
          const buffers = c.buffers.map(role);
          const { pipeline, layout } = device.pipelineFor(c.spec);
          const uniformSize = c.uniform ? alignTo(c.uniform.byteLength, 16) : 0;
          let key = `${c.spec.bindings.join(',')}|${uniformSize}`;
          for (const buf of buffers) key += `,${idOf(buf)}`;
          let group = groups.get(key);
          if (!group) {
            let i = 0;
            group = device.gpuDevice.createBindGroup({
              layout,
              entries: c.spec.bindings.map((kind, binding) =>
                kind === 'uniform'
                  ? { binding, resource: { buffer: this.uniformBuffer!, offset: 0, size: uniformSize } }
                  : { binding, resource: { buffer: buffers[i++] } },
              ),
            });
            groups.set(key, group);
          }
          const offsets: number[] = [];
          if (c.uniform) {
            const offset = uniformAt[u++];
            this.uniformStaging.set(c.uniform, offset);
            offsets.push(offset);
            if (c.thunk) this.host.push({ k: 'uniform', offset, size: c.uniform.byteLength, thunk: c.thunk });
          }
          this.steps.push({ k: 'dispatch', pipeline, group, offsets, wg: c.workgroups });
          this.ops.push({ bindings: c.spec.bindings, buffers });
          kernels.add(c.spec.key);
          dispatches++;
          break;
        }
        case 'copy': {
          noteRead(c.src);
          noteWrite(c.dst);
          const src = role(c.src);
          const dst = role(c.dst);
          this.steps.push({ k: 'copy', src, srcOffset: c.srcOffset, dst, dstOffset: c.dstOffset, bytes: c.bytes });
          this.ops.push({ bindings: ['read', 'write'], buffers: [src, dst] });
          break;
        }
        case 'write': {
          noteWrite(c.buffer);
          const dst = role(c.buffer);
          constStaging.set(c.data, constAt);
          this.steps.push({
            k: 'copy',
            src: this.constBuffer!,
            srcOffset: constAt,
            dst,
            dstOffset: c.offset,
            bytes: c.data.byteLength,
          });
          this.ops.push({ bindings: ['write'], buffers: [dst] });
          constAt += alignTo(c.data.byteLength, 4);
          break;
        }
        case 'hook':
          this.host.push({ k: 'hook', fn: c.fn });
          break;
        case 'bump': {
          const arg = args.indexOf(c.storage);
          if (arg >= 0) this.host.push({ k: 'bumpArg', arg });
          else if (!created.has(c.storage)) this.host.push({ k: 'bumpHeld', storage: c.storage });
          break;
        }
      }
    }

    const readsStale = firstUseIsRead.filter((b) => argIndex.get(b) === undefined && !device.isDeviceBuffer(b) && rename.get(b) !== b);
    if (readsStale.length) {
      this.dispose();
      throw new TraceError(
        `compile: the function reads ${readsStale.length} buffer(s) whose values come from before the call but that no live tensor holds ` +
          '(a tensor from its closure disposed inside the function?); pass such tensors as arguments instead',
      );
    }

    for (const s of outputs) {
      const arg = args.indexOf(s);
      if (arg >= 0) this.outputSources.push({ arg });
      // An output no command wrote (`empty()`) still gets its own buffer: never the traced call's result.
      else this.outputSources.push({ buffer: rename.get(s.buffer) ?? (created.has(s) ? role(s.buffer) : s.buffer) });
    }
    if (this.uniformBuffer) device.gpuDevice.queue.writeBuffer(this.uniformBuffer, 0, this.uniformStaging as Uint8Array<ArrayBuffer>, 0, uniformBytes);
    if (this.constBuffer) device.gpuDevice.queue.writeBuffer(this.constBuffer, 0, constStaging as Uint8Array<ArrayBuffer>, 0, constBytes);
    const arenaBytes = this.owned.reduce((n, b) => n + b.size, 0);
    this.stats = { dispatches, kernels: kernels.size, arenaBytes, totalBytes: arenaBytes + uniformBytes + constBytes };
    device.bytesCompiled += this.stats.totalBytes;
  }

  private acquire(size: number): GPUBuffer {
    const b = this.device.pool.acquire(size);
    this.owned.push(b);
    return b;
  }

  /**
   * Runs the step on new arguments (storages in the order of the traced call's distinct argument storages) and
   * returns fresh storages holding the outputs. Host hooks, volatile uniforms and version bumps run first, in trace
   * order; then everything is encoded into one command buffer and submitted once.
   */
  replay(args: readonly Storage[]): Storage[] {
    if (this.disposed) throw new TraceError('compile: this compiled step was disposed');
    const device = this.device;
    for (const s of this.held) {
      if (s.refCount <= 1) {
        throw new TraceError(
          `compile: a tensor the function reads from its closure (${s.byteSize} bytes) was disposed after it was traced; ` +
            'the replay would read its old buffer. Pass it as an argument, or compile again',
        );
      }
    }
    const argBuffers = args.map((s) => s.buffer); // realises pending arguments before the step's own work
    for (const h of this.host) {
      if (h.k === 'hook') h.fn();
      else if (h.k === 'uniform') {
        const data = h.thunk();
        if (data.byteLength !== h.size) throw new TraceError(`compile: a volatile uniform changed size (${h.size} → ${data.byteLength} bytes) between calls`);
        this.uniformStaging.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), h.offset);
        device.gpuDevice.queue.writeBuffer(this.uniformBuffer!, h.offset, this.uniformStaging as Uint8Array<ArrayBuffer>, h.offset, alignTo(h.size, 4));
      } else if (h.k === 'bumpHeld') h.storage.bumpVersion();
      else args[h.arg].bumpVersion();
    }
    const startBytes = device.bytesInUse;
    const outputs = this.outputBytes.map((bytes) => Storage.allocate(device, bytes));
    const outBuffers = outputs.map((s) => s.buffer);
    // The copies in and out belong to the batch too: if it fails, the outputs are spoiled like any kernel's.
    const copyOps: { bindings: readonly string[]; buffers: readonly GPUBuffer[] }[] = [];
    args.forEach((_s, i) => {
      if (this.argSlots[i]) copyOps.push({ bindings: COPY, buffers: [argBuffers[i], this.argSlots[i]] });
    });
    const ops = copyOps.concat(this.ops);
    for (const i of this.writtenArgs) ops.push({ bindings: COPY, buffers: [this.argSlots[i], argBuffers[i]] });
    this.outputSources.forEach((src, i) =>
      ops.push({
        bindings: COPY,
        buffers: ['arg' in src ? (this.argSlots[src.arg] ?? argBuffers[src.arg]) : src.buffer, outBuffers[i]],
      }),
    );
    device.submitEncoded(
      (encoder) => {
        args.forEach((s, i) => {
          if (this.argSlots[i]) encoder.copyBufferToBuffer(argBuffers[i], 0, this.argSlots[i], 0, alignTo(s.byteSize, 4));
        });
        let pass: GPUComputePassEncoder | null = null;
        for (const st of this.steps) {
          if (st.k === 'dispatch') {
            pass ??= encoder.beginComputePass();
            pass.setPipeline(st.pipeline);
            pass.setBindGroup(0, st.group, st.offsets);
            pass.dispatchWorkgroups(st.wg[0], st.wg[1], st.wg[2]);
          } else {
            if (pass) {
              pass.end();
              pass = null;
            }
            encoder.copyBufferToBuffer(st.src, st.srcOffset, st.dst, st.dstOffset, st.bytes);
          }
        }
        pass?.end();
        for (const i of this.writtenArgs) encoder.copyBufferToBuffer(this.argSlots[i], 0, argBuffers[i], 0, alignTo(args[i].byteSize, 4));
        this.outputSources.forEach((src, i) => {
          const from = 'arg' in src ? (this.argSlots[src.arg] ?? argBuffers[src.arg]) : src.buffer;
          encoder.copyBufferToBuffer(from, 0, outBuffers[i], 0, alignTo(this.outputBytes[i], 4));
        });
      },
      ops,
      this.stats.dispatches,
    );
    device.notePeakAbove(startBytes, this.peakAboveStart);
    return outputs;
  }

  /**
   * Whether a failed GPU batch spoiled a buffer the plan owns: every later replay would then be marked spoiled, so
   * the compiled function drops the plan and traces again (the pool destroys spoiled buffers on release).
   */
  get spoiled(): boolean {
    return this.owned.some((b) => this.device.isSpoiled(b));
  }

  /** Gives the arena back to the pool, destroys the uniform and constant buffers, lets go of held tensors. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (!this.device.isDestroyed) {
      for (const b of this.owned) this.device.pool.release(b);
      this.uniformBuffer?.destroy();
      this.constBuffer?.destroy();
    }
    for (const s of this.held) s.release();
    if (this.stats) this.device.bytesCompiled -= this.stats.totalBytes;
  }
}

function alignTo(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}
