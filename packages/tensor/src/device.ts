/** @file The device runtime: adapter limits, batched dispatch recording, pipeline cache, uniform ring, memory stats. */
import type { KernelSpec, BindingKind, IndexCheckedOp } from '@metagrad/kernels-wgsl';
import { MAX_WORKGROUPS_PER_DIM } from '@metagrad/kernels-wgsl';
import { BufferPool } from './pool';
import { DeviceLostError, KernelError, OutOfMemoryError, TraceError } from './errors';
import { BatchTracker } from './batches';
import { StagingPool } from './staging';
import { INDEX_FLAG_BYTES, IndexChecks } from './index-checks';
import { Recording, type UniformThunk } from './capture/recording';
import type { Storage } from './tensor';

const COPY_DST = 0x08;
const UNIFORM = 0x40;
/** Bind groups kept before the cache is dropped wholesale (cheap to rebuild; bounds memory held by stale groups). */
const BIND_GROUP_CACHE_SIZE = 4096;

export interface AdapterDescription {
  /** Which of metagrad's adapter choices this is: 'hardware', 'llvmpipe', 'swiftshader', 'browser' or 'custom'. */
  name: string;
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  backend: string;
  featureLevel: 'core' | 'compatibility';
  isFallbackAdapter: boolean;
}

export interface CreateDeviceOptions {
  /** The injected WebGPU entry point: `navigator.gpu` in browsers, `create([...])` from `webgpu` in Node. */
  gpu: GPU;
  requestAdapterOptions?: GPURequestAdapterOptions;
  /** Name recorded in `adapter.name` (the Node helper passes 'llvmpipe', 'swiftshader' or 'hardware'). */
  adapterName?: string;
  /** Backend string for reports (e.g. 'opengles', 'vulkan'). */
  backend?: string;
  /** Submit after this many recorded dispatches even without a readback. */
  maxDispatchesPerSubmit?: number;
  /** An object that must stay referenced while the device lives (dawn.node's `create()` result). */
  keepAlive?: unknown;
}

export interface MemoryStats {
  liveTensors: number;
  bytesInUse: number;
  peakBytesInUse: number;
  bytesPooled: number;
  bytesAllocated: number;
  /** Bytes of readback staging buffers alive (cached for reuse or in flight); `emptyCache()` frees the cached ones. */
  bytesStaging: number;
  /** Bytes of GPU buffers held by compiled steps (their arena and slots; `dispose()` on the compiled function frees them). */
  bytesCompiled: number;
  pipelines: number;
}

interface CachedPipeline {
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
}

/** Limits the kernels rely on; requested up to what the adapter offers (compat defaults are too low). */
const WANTED_LIMITS = [
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupStorageSize',
  'maxStorageBuffersPerShaderStage',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxUniformBufferBindingSize',
] as const;

let nextDeviceId = 1;

export class Device {
  readonly pool: BufferPool;
  readonly limits: Record<string, number>;
  readonly features: string[];
  readonly maxDispatchesPerSubmit: number;

  private readonly pipelines = new Map<string, CachedPipeline>();
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pendingDispatches = 0;
  /** Dynamic uniform offsets are multiples of this (minUniformBufferOffsetAlignment, at least 16). */
  readonly uniformAlign: number;
  private readonly uniformBuffer: GPUBuffer;
  private readonly uniformStaging: Uint8Array;
  private uniformUsed = 0;
  private readonly staging: StagingPool;
  private readonly batches: BatchTracker;
  /** The index-bounds flag words and what each checked dispatch was; the flags ride with each readback. */
  private readonly indexChecks: IndexChecks;
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  private deferredError: Error | null = null;
  private readonly compileChecks: Promise<void>[] = [];
  private lostInfo: { reason: string; message: string } | null = null;
  private destroyed = false;
  /** The trace of a compiled function in progress on this device (compile in @metagrad/autograd), else null. */
  recording: Recording | null = null;
  private peakBeforeRecording = 0;
  /** Which storage each buffer was last handed to: a trace tells buffers it must keep (closed-over tensors) from temporaries. */
  private readonly owners = new WeakMap<GPUBuffer, Storage>();
  /** Bytes of GPU buffers held by compiled plans (arena, input/output slots, uniforms, constants). */
  bytesCompiled = 0;

  // Memory accounting, kept exact by Storage (see storage.ts).
  liveTensors = 0;
  bytesInUse = 0;
  peakBytesInUse = 0;

  /** Counters for benchmarks and tests. */
  readonly counters = { dispatches: 0, submits: 0, readbacks: 0, uploads: 0 };

  private constructor(
    readonly gpuDevice: GPUDevice,
    readonly adapter: AdapterDescription,
    options: CreateDeviceOptions,
    private readonly keepAlive: unknown,
    /** Process-unique number, so messages can tell two devices on the same adapter apart. */
    readonly id: number,
  ) {
    this.limits = Object.fromEntries(
      [...WANTED_LIMITS, 'minUniformBufferOffsetAlignment', 'maxComputeWorkgroupsPerDimension'].map((k) => [
        k,
        Number((gpuDevice.limits as unknown as Record<string, number>)[k]),
      ]),
    );
    this.features = [...gpuDevice.features].map(String).sort();
    this.maxDispatchesPerSubmit = options.maxDispatchesPerSubmit ?? 256;
    this.uniformAlign = Math.max(16, this.limits.minUniformBufferOffsetAlignment || 256);
    const ringBytes = this.uniformAlign * Math.max(this.maxDispatchesPerSubmit, 64);
    this.uniformBuffer = gpuDevice.createBuffer({ size: ringBytes, usage: UNIFORM | COPY_DST, label: 'uniform-ring' });
    this.uniformStaging = new Uint8Array(ringBytes);
    this.indexChecks = new IndexChecks(gpuDevice, String(this));
    this.staging = new StagingPool(gpuDevice);
    this.batches = new BatchTracker(gpuDevice);
    this.batches.exemptBuffer(this.indexChecks.flags);
    const maxBinding = Math.min(this.limits.maxStorageBufferBindingSize || Infinity, this.limits.maxBufferSize || Infinity);
    this.pool = new BufferPool((size) => this.createStorageBuffer(size), undefined, {
      maxBytes: maxBinding,
      discard: (buffer) => this.batches.isSpoiled(buffer),
    });
    gpuDevice.addEventListener('uncapturederror', (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      this.recordError(err, 'uncaptured');
    });
    void gpuDevice.lost.then((info) => {
      this.lostInfo = { reason: String(info.reason), message: info.message };
    });
  }

  /** Acquires an adapter and device from the injected `GPU`, requesting the adapter's higher limits. */
  static async create(options: CreateDeviceOptions): Promise<Device> {
    const adapter = await options.gpu.requestAdapter(options.requestAdapterOptions);
    if (!adapter) throw new Error('requestAdapter() returned null: no WebGPU adapter for these options');
    const requiredLimits: Record<string, number> = {};
    for (const k of WANTED_LIMITS) {
      const v = (adapter.limits as unknown as Record<string, number>)[k];
      if (typeof v === 'number') requiredLimits[k] = v;
    }
    const requiredFeatures = (['shader-f16', 'timestamp-query', 'subgroups'] as GPUFeatureName[]).filter((f) => adapter.features.has(f));
    const id = nextDeviceId++;
    // Dawn names the device in its messages: give each its own label (`llvmpipe#2`), as toString() does.
    const gpuDevice = await adapter.requestDevice({
      requiredLimits,
      requiredFeatures,
      label: `${options.adapterName ?? 'custom'}#${id}`,
    });
    const info = adapter.info;
    const featureLevel =
      (adapter as unknown as { featureLevel?: string }).featureLevel === 'compatibility' || options.requestAdapterOptions?.featureLevel === 'compatibility'
        ? 'compatibility'
        : 'core';
    const description: AdapterDescription = {
      name: options.adapterName ?? 'custom',
      vendor: info?.vendor ?? '',
      architecture: info?.architecture ?? '',
      device: info?.device ?? '',
      description: info?.description ?? '',
      backend: options.backend ?? '',
      featureLevel,
      isFallbackAdapter: Boolean((info as unknown as { isFallbackAdapter?: boolean })?.isFallbackAdapter),
    };
    return new Device(gpuDevice, description, options, options.keepAlive, id);
  }

  // ---------------------------------------------------------------- errors

  private recordError(err: GPUError, where: string): void {
    if (!this.deferredError) this.deferredError = this.gpuErrorToException(err, where);
  }

  private gpuErrorToException(err: GPUError, where: string): Error {
    const msg = err.message;
    const label = /\[(?:ComputePipeline|ShaderModule|BindGroup)\w*\s+"+([^"]+)"+\]/.exec(msg)?.[1] ?? where;
    const isOom = (err as { constructor: { name: string } }).constructor?.name === 'GPUOutOfMemoryError';
    return isOom ? new OutOfMemoryError(`GPU out of memory on device ${this}: ${msg}`, 0) : new KernelError(`${label} on device ${this}: ${msg}`, label);
  }

  /** Throws DeviceLostError if the device was destroyed or lost (cheap; every recording call checks it). */
  throwIfLost(): void {
    if (this.lostInfo && !this.destroyed) {
      throw new DeviceLostError(`WebGPU device ${this} lost (${this.lostInfo.reason}): ${this.lostInfo.message}`, this.lostInfo.reason);
    }
    if (this.destroyed) {
      throw new DeviceLostError(
        `device ${this} was destroyed; create another with createNodeDevice() from '@metagrad/tensor/node' (Node) or Device.create({ gpu }) and setDefaultDevice()`,
        'destroyed',
      );
    }
  }

  /**
   * Throws DeviceLostError if the device is gone, else the first GPU error seen since the last check, else an
   * IndexOutOfRangeError read back from the bounds flag (kept for the next check if a GPU error went first).
   */
  throwIfFailed(): void {
    this.throwIfLost();
    const e = this.deferredError;
    if (e) {
      this.deferredError = null;
      throw e;
    }
    const indexFailure = this.indexChecks.takeFailure();
    if (indexFailure) throw indexFailure;
  }

  /**
   * Waits for queued GPU work and its error scopes, then throws what it produced: a GPU error (KernelError or
   * OutOfMemoryError; the work it spoiled is marked, see batches.ts) or an IndexOutOfRangeError from the bounds flag.
   */
  async sync(): Promise<void> {
    this.throwIfLost();
    if (this.recording)
      throw new TraceError(
        `sync() inside a compiled function on device ${this}: a replay cannot wait for the GPU mid-step; move it out of the compiled function`,
      );
    if (this.indexChecks.pending) {
      await this.read(this.indexChecks.flags, 0);
      return;
    }
    this.flush();
    await this.gpuDevice.queue.onSubmittedWorkDone();
    await this.settleBatches();
    this.throwIfFailed();
  }

  /** Awaits every submitted batch's error scopes; a failed batch's writes become unreadable and it is reported. */
  private async settleBatches(): Promise<void> {
    if (this.compileChecks.length) {
      const checks = this.compileChecks.splice(0);
      await Promise.all(checks);
    }
    const failure = await this.batches.settle();
    if (!failure) return;
    // Invalid bind groups and buffers must not be reused: drop cached groups and pooled buffers.
    this.bindGroups.clear();
    this.pool.trim();
    if (!this.deferredError) this.deferredError = this.gpuErrorToException(failure, 'batch');
  }

  // ---------------------------------------------------------------- index bounds

  /** The flag words every index-reading kernel binds (device-owned; a compiled plan binds it as is). */
  get indexFlags(): GPUBuffer {
    return this.indexChecks.flags;
  }

  /**
   * Registers one index-checked dispatch and returns the tag to put in its uniform. Call it from the dispatch's
   * uniform thunk, so a compiled step's replay registers (and marks the flags to read) again. `describe` builds the
   * error's detail (shapes, axis) only if this dispatch is the one reported.
   */
  indexCheck(op: IndexCheckedOp, describe: () => string): number {
    return this.indexChecks.register(op, describe).tag;
  }

  // ---------------------------------------------------------------- pipelines

  private layoutFor(bindings: readonly BindingKind[]): GPUBindGroupLayout {
    const sig = bindings.join(',');
    let layout = this.layouts.get(sig);
    if (!layout) {
      layout = this.gpuDevice.createBindGroupLayout({
        label: `layout:${sig}`,
        entries: bindings.map((kind, binding) => ({
          binding,
          visibility: 0x4 /* COMPUTE */,
          buffer: kind === 'uniform' ? { type: 'uniform', hasDynamicOffset: true } : { type: kind === 'read' ? 'read-only-storage' : 'storage' },
        })),
      });
      this.layouts.set(sig, layout);
    }
    return layout;
  }

  /** Returns the cached pipeline for a kernel, compiling it on first use (errors surface at the next sync). */
  pipelineFor(spec: KernelSpec): CachedPipeline {
    let cached = this.pipelines.get(spec.key);
    if (cached) return cached;
    const layout = this.layoutFor(spec.bindings);
    this.gpuDevice.pushErrorScope('validation');
    const module = this.gpuDevice.createShaderModule({ code: spec.code, label: spec.key });
    const pipeline = this.gpuDevice.createComputePipeline({
      label: spec.key,
      layout: this.gpuDevice.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: spec.entryPoint },
    });
    const check = this.gpuDevice.popErrorScope().then(
      (err) => {
        if (err) {
          this.pipelines.delete(spec.key);
          if (!this.deferredError) this.deferredError = new KernelError(`kernel ${spec.key} failed to compile: ${err.message}`, spec.key);
        }
      },
      () => undefined,
    );
    // Awaited before batch errors are reported, so a compile error is named as such (once), not as the batch it broke.
    this.compileChecks.push(check);
    cached = { pipeline, layout };
    this.pipelines.set(spec.key, cached);
    if (debugEnabled()) console.error(`[metagrad] compiled ${spec.key}\n${spec.code}`);
    return cached;
  }

  /** Compiles a kernel now and throws KernelError with the compiler's messages if it is invalid. */
  async compile(spec: KernelSpec): Promise<void> {
    this.gpuDevice.pushErrorScope('validation');
    const module = this.gpuDevice.createShaderModule({ code: spec.code, label: spec.key });
    const scopeError = this.gpuDevice.popErrorScope();
    const info = await module.getCompilationInfo();
    await scopeError;
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) {
      throw new KernelError(`kernel ${spec.key} failed to compile:\n${errors.map((m) => `  ${m.lineNum}:${m.linePos} ${m.message}`).join('\n')}`, spec.key);
    }
    try {
      const pipeline = await this.gpuDevice.createComputePipelineAsync({
        label: spec.key,
        layout: this.gpuDevice.createPipelineLayout({ bindGroupLayouts: [this.layoutFor(spec.bindings)] }),
        compute: { module, entryPoint: spec.entryPoint },
      });
      this.pipelines.set(spec.key, { pipeline, layout: this.layoutFor(spec.bindings) });
    } catch (e) {
      throw new KernelError(`kernel ${spec.key} failed to build: ${(e as Error).message}`, spec.key);
    }
  }

  get pipelineCount(): number {
    return this.pipelines.size;
  }

  // ---------------------------------------------------------------- recording

  /**
   * Records one dispatch. `buffers` are bound in the order of `spec.bindings` minus the uniform slot;
   * `uniform` (if the kernel has a uniform binding) is copied into the ring now.
   */
  dispatch(
    spec: KernelSpec,
    buffers: readonly GPUBuffer[],
    uniformOrThunk: ArrayBufferView | UniformThunk | null,
    workgroups: readonly [number, number, number],
  ): void {
    // Only a lost device stops recording: GPU errors are reported at the next sync/readback, not by a later op.
    this.throwIfLost();
    for (const n of workgroups) {
      if (!(n >= 0 && n <= MAX_WORKGROUPS_PER_DIM && Number.isInteger(n))) {
        throw new KernelError(`kernel ${spec.key}: workgroup count ${JSON.stringify(workgroups)} out of range (max ${MAX_WORKGROUPS_PER_DIM}/dim)`, spec.key);
      }
    }
    if (workgroups[0] * workgroups[1] * workgroups[2] === 0) return;
    const thunk = typeof uniformOrThunk === 'function' ? uniformOrThunk : null;
    const uniform = thunk ? thunk() : (uniformOrThunk as ArrayBufferView | null);
    const { pipeline, layout } = this.pipelineFor(spec);
    const hasUniform = spec.bindings.includes('uniform');
    if (hasUniform && !uniform) throw new KernelError(`kernel ${spec.key} needs uniforms`, spec.key);
    const uniformSize = hasUniform ? alignUp(uniform!.byteLength, 16) : 0;
    // A full uniform ring submits now, so the bind group below is created in the batch that uses it (an error
    // creating it then fails that batch, not the one before).
    if (hasUniform && this.uniformUsed + uniformSize > this.uniformStaging.byteLength) this.flush();
    this.commandEncoder(); // opens the batch (and its error scopes) before the bind group can fail
    const bindGroup = this.bindGroupFor(spec, layout, buffers, uniformSize);
    const dynamicOffsets = hasUniform ? [this.pushUniform(uniform!)] : [];
    const pass = this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup, dynamicOffsets);
    pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
    this.batches.recordDispatch(spec.bindings, buffers);
    this.recording?.commands.push({
      k: 'dispatch',
      spec,
      buffers: [...buffers],
      uniform: uniform ? bytesOf(uniform).slice() : null,
      thunk,
      workgroups: [...workgroups] as [number, number, number],
    });
    this.counters.dispatches++;
    if (++this.pendingDispatches >= this.maxDispatchesPerSubmit) this.flush();
  }

  /**
   * Bind groups are cached by (layout, buffer identities, uniform size): pooled buffers recur constantly in
   * training loops, and the uniform slot uses a dynamic offset, so a hit skips createBindGroup (~5 µs on Dawn).
   */
  private bindGroupFor(spec: KernelSpec, layout: GPUBindGroupLayout, buffers: readonly GPUBuffer[], uniformSize: number): GPUBindGroup {
    let key = `${spec.bindings.join(',')}|${uniformSize}`;
    for (const buf of buffers) key += `,${this.bufferId(buf)}`;
    const hit = this.bindGroups.get(key);
    if (hit) return hit;
    const entries: GPUBindGroupEntry[] = [];
    let b = 0;
    for (let i = 0; i < spec.bindings.length; i++) {
      if (spec.bindings[i] === 'uniform') {
        entries.push({ binding: i, resource: { buffer: this.uniformBuffer, offset: 0, size: uniformSize } });
      } else {
        const buffer = buffers[b++];
        if (!buffer) throw new KernelError(`kernel ${spec.key}: expected ${spec.bindings.length} bindings, got ${buffers.length} buffers`, spec.key);
        entries.push({ binding: i, resource: { buffer } });
      }
    }
    const group = this.gpuDevice.createBindGroup({ layout, entries });
    if (this.bindGroups.size >= BIND_GROUP_CACHE_SIZE) this.bindGroups.clear();
    this.bindGroups.set(key, group);
    return group;
  }

  private bufferId(buffer: GPUBuffer): number {
    let id = this.bufferIds.get(buffer);
    if (id === undefined) {
      id = this.nextBufferId++;
      this.bufferIds.set(buffer, id);
    }
    return id;
  }

  private pushUniform(data: ArrayBufferView): number {
    const size = alignUp(data.byteLength, 16);
    if (this.uniformUsed + size > this.uniformStaging.byteLength) this.flush();
    const offset = this.uniformUsed;
    this.uniformStaging.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    this.uniformUsed = alignUp(offset + size, this.uniformAlign);
    return offset;
  }

  private commandEncoder(): GPUCommandEncoder {
    if (!this.encoder) {
      this.batches.open();
      this.encoder = this.gpuDevice.createCommandEncoder();
    }
    return this.encoder;
  }

  private computePass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = this.commandEncoder().beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /** Submits everything recorded so far. Uniforms are uploaded first (queue order keeps the ring safe to reuse). */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.uniformUsed > 0) {
      this.gpuDevice.queue.writeBuffer(this.uniformBuffer, 0, this.uniformStaging as Uint8Array<ArrayBuffer>, 0, this.uniformUsed);
      this.uniformUsed = 0;
    }
    const encoder = this.encoder;
    this.encoder = null;
    this.pendingDispatches = 0;
    try {
      this.gpuDevice.queue.submit([encoder.finish()]);
    } finally {
      this.batches.close();
    }
    this.counters.submits++;
  }

  /** Records a buffer-to-buffer copy in the current batch. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.throwIfLost();
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, alignUp(bytes, 4));
    this.batches.recordCopy(src, dst);
    this.recording?.commands.push({ k: 'copy', src, srcOffset, dst, dstOffset, bytes: alignUp(bytes, 4) });
  }

  /**
   * Submits a compiled plan as one batch after whatever is pending (see capture/plan.ts): `encode` records its
   * commands, `ops` are their bindings for GPU-error tracking, `dispatches` their count for the counters.
   */
  submitEncoded(
    encode: (encoder: GPUCommandEncoder) => void,
    ops: readonly { bindings: readonly string[]; buffers: readonly GPUBuffer[] }[],
    dispatches: number,
  ): void {
    this.throwIfLost();
    this.flush();
    this.batches.open();
    try {
      const encoder = this.gpuDevice.createCommandEncoder();
      encode(encoder);
      for (const op of ops) this.batches.recordDispatch(op.bindings, op.buffers);
      this.gpuDevice.queue.submit([encoder.finish()]);
    } finally {
      this.batches.close();
    }
    this.counters.dispatches += dispatches;
    this.counters.submits++;
  }

  // ---------------------------------------------------------------- capture (compile)

  /** Starts recording a compiled function's trace: every command from now on is kept, and the peak is measured. */
  beginRecording(): Recording {
    if (this.recording) throw new TraceError(`device ${this} is already recording a compiled function's trace (two traces at once on one device)`);
    const rec = new Recording(this.bytesInUse);
    this.peakBeforeRecording = this.peakBytesInUse;
    this.peakBytesInUse = this.bytesInUse;
    this.recording = rec;
    return rec;
  }

  /** Stops the recording started by beginRecording; the peak window continues as if it had never been split. */
  endRecording(): Recording {
    const rec = this.recording;
    if (!rec) throw new TraceError(`device ${this} is not recording`);
    this.recording = null;
    rec.peakAboveStart = this.peakBytesInUse - rec.startBytes;
    this.peakBytesInUse = Math.max(this.peakBeforeRecording, this.peakBytesInUse);
    return rec;
  }

  /**
   * Runs host code that belongs to each call of a step (an optimiser's step counter, a schedule): now, and again at
   * every replay of a compiled step whose trace ran it, in the same order relative to the step's uniform thunks.
   */
  onReplay(fn: () => void): void {
    fn();
    this.recording?.commands.push({ k: 'hook', fn });
  }

  /** Notes that `storage` now owns `buffer` (Storage calls this; compile uses it to find closed-over tensors). */
  noteOwner(buffer: GPUBuffer, storage: Storage): void {
    this.owners.set(buffer, storage);
  }

  /** The storage `buffer` was last handed to (it may since have been freed: check its refCount). */
  ownerOf(buffer: GPUBuffer): Storage | undefined {
    return this.owners.get(buffer);
  }

  /** Whether a failed batch left `buffer`'s content untrustworthy (a compiled plan owning it must be rebuilt). */
  isSpoiled(buffer: GPUBuffer): boolean {
    return this.batches.isSpoiled(buffer);
  }

  /** Whether `buffer` is device-owned (the index-bounds flag words): a plan binds it as is. */
  isDeviceBuffer(buffer: GPUBuffer): boolean {
    return buffer === this.indexChecks.flags;
  }

  /** Peak accounting for a replay: it reaches what its trace reached above its starting usage. */
  notePeakAbove(startBytes: number, aboveStart: number): void {
    if (startBytes + aboveStart > this.peakBytesInUse) this.peakBytesInUse = startBytes + aboveStart;
  }

  // ---------------------------------------------------------------- buffers

  /**
   * Every pooled buffer is bound whole as a storage buffer, so it must fit maxStorageBufferBindingSize (128 MiB on
   * llvmpipe), not only maxBufferSize: checked here, on the host, before anything is allocated.
   */
  private createStorageBuffer(size: number): GPUBuffer {
    this.throwIfLost();
    const binding = this.limits.maxStorageBufferBindingSize;
    const max = this.limits.maxBufferSize;
    if (size > max || size > binding) {
      throw new OutOfMemoryError(
        `cannot allocate ${size} bytes on device ${this}: a tensor buffer may hold at most ${Math.min(binding, max)} bytes ` +
          `(maxStorageBufferBindingSize ${binding}, maxBufferSize ${max})`,
        size,
      );
    }
    return this.batches.createBuffer(size, this.pool.usage, (err) => this.recordError(err, `allocating ${size} bytes`));
  }

  /** Uploads host data into a buffer. Pending recorded work is submitted first so the write cannot overtake it. */
  write(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    this.throwIfLost();
    if (this.encoder) this.flush();
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const padded = bytes.byteLength % 4 === 0 ? bytes : padTo4(bytes);
    this.gpuDevice.queue.writeBuffer(buffer, offset, padded as Uint8Array<ArrayBuffer>);
    this.recording?.commands.push({ k: 'write', buffer, offset, data: padded.slice() });
    this.counters.uploads++;
  }

  /**
   * Reads `bytes` from a buffer back to the host (submits pending work, waits for it). If index-checked kernels
   * ran since the last readback, the bound flag words ride in the same staging buffer after the payload (one copy,
   * one map) and are cleared in the same submit. Then throws, in this order: a lost device, a GPU error, an
   * IndexOutOfRangeError, or a KernelError if `buffer` holds the output of work that a GPU error spoiled.
   */
  async read(buffer: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    this.throwIfLost();
    if (this.recording) {
      throw new TraceError(
        `a readback of ${bytes} bytes (toArray(), item() or a host check) inside a compiled function on device ${this}: ` +
          'a replay cannot branch on GPU values; return the tensor from the function and read it after the call',
      );
    }
    const size = alignUp(Math.max(bytes, 4), 4);
    const withFlags = this.indexChecks.pending;
    const total = size + (withFlags ? INDEX_FLAG_BYTES : 0);
    const staging = this.staging.acquire(total);
    let out: ArrayBuffer;
    try {
      this.copy(buffer, offset, staging, 0, size);
      if (withFlags) this.indexChecks.copyOut(this.encoder!, staging, size);
      this.flush();
      this.counters.readbacks++;
      await staging.mapAsync(1 /* READ */, 0, total);
      const mapped = staging.getMappedRange(0, total);
      out = mapped.slice(0, bytes);
      if (withFlags) this.indexChecks.noteReadback(new Uint32Array(mapped.slice(size, total)));
      staging.unmap();
      this.staging.release(staging);
    } catch (e) {
      this.staging.discard(staging);
      await this.settleBatches();
      this.throwIfFailed();
      throw e;
    }
    await this.settleBatches();
    this.throwIfFailed();
    const spoiled = this.batches.spoiledReason(buffer);
    if (spoiled) {
      throw new KernelError(
        `cannot read this tensor on device ${this}: the GPU work that computed it (or one of its inputs) failed with an earlier error (${spoiled}); compute it again`,
        'spoiled',
      );
    }
    return out;
  }

  // ---------------------------------------------------------------- memory

  /** Destroys pooled buffers (like torch.cuda.empty_cache); returns the bytes released. */
  emptyCache(): number {
    this.flush();
    this.bindGroups.clear();
    return this.pool.trim() + this.staging.trim();
  }

  /** Called by Storage on allocation/free; keeps `bytesInUse` and its peak exact. */
  trackAlloc(bytes: number): void {
    this.bytesInUse += bytes;
    if (this.bytesInUse > this.peakBytesInUse) this.peakBytesInUse = this.bytesInUse;
  }

  trackFree(bytes: number): void {
    this.bytesInUse -= bytes;
  }

  memory(): MemoryStats {
    const pool = this.pool.snapshot();
    return {
      liveTensors: this.liveTensors,
      bytesInUse: this.bytesInUse,
      peakBytesInUse: this.peakBytesInUse,
      bytesPooled: pool.bytesPooled,
      bytesAllocated: pool.bytesAllocated,
      bytesStaging: this.staging.bytes,
      bytesCompiled: this.bytesCompiled,
      pipelines: this.pipelines.size,
    };
  }

  /** Starts a new peak window at the current usage (like torch.cuda.reset_peak_memory_stats). */
  resetPeak(): void {
    this.peakBytesInUse = this.bytesInUse;
  }

  /** Releases every GPU object; the Node process can exit afterwards. */
  destroy(): void {
    if (this.destroyed) return;
    try {
      this.flush();
    } catch {
      /* a lost device cannot submit; destroying anyway */
    }
    this.destroyed = true;
    this.bindGroups.clear();
    this.pool.trim();
    this.staging.trim();
    this.indexChecks.destroy();
    this.uniformBuffer.destroy();
    this.pipelines.clear();
    this.layouts.clear();
    this.gpuDevice.destroy();
    void this.keepAlive;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** `llvmpipe#2`: the adapter choice and this device's number, as error messages name it. */
  toString(): string {
    return `${this.adapter.name}#${this.id}`;
  }
}

export function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

function bytesOf(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function padTo4(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(alignUp(bytes.byteLength, 4));
  out.set(bytes);
  return out;
}

/** `METAGRAD_DEBUG=1` (or `globalThis.METAGRAD_DEBUG = true` in a browser) prints every compiled kernel's WGSL. */
export function debugEnabled(): boolean {
  const g = globalThis as { METAGRAD_DEBUG?: boolean; process?: { env?: Record<string, string | undefined> } };
  return Boolean(g.METAGRAD_DEBUG) || g.process?.env?.METAGRAD_DEBUG === '1';
}
