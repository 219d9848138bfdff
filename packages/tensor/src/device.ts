/** @file The device runtime: adapter limits, batched dispatch recording, pipeline cache, uniform ring, memory stats. */
import type { KernelSpec, BindingKind } from '@metagrad/kernels-wgsl';
import { MAX_WORKGROUPS_PER_DIM } from '@metagrad/kernels-wgsl';
import { BufferPool } from './pool';
import { DeviceLostError, KernelError, OutOfMemoryError } from './errors';

const MAP_READ = 0x01;
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
  /** Process-unique number, so messages can tell two devices on the same adapter apart. */
  readonly id = nextDeviceId++;
  readonly pool: BufferPool;
  readonly limits: Record<string, number>;
  readonly features: string[];
  readonly maxDispatchesPerSubmit: number;

  private readonly pipelines = new Map<string, CachedPipeline>();
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pendingDispatches = 0;
  private readonly uniformAlign: number;
  private readonly uniformBuffer: GPUBuffer;
  private readonly uniformStaging: Uint8Array;
  private uniformUsed = 0;
  private readonly stagingFree: GPUBuffer[] = [];
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 1;
  private deferredError: Error | null = null;
  private lostInfo: { reason: string; message: string } | null = null;
  private destroyed = false;

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
    this.pool = new BufferPool((size) => this.createStorageBuffer(size));
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
    const requiredFeatures = (['shader-f16', 'timestamp-query', 'subgroups'] as GPUFeatureName[]).filter((f) =>
      adapter.features.has(f),
    );
    const gpuDevice = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'metagrad' });
    const info = adapter.info;
    const featureLevel =
      (adapter as unknown as { featureLevel?: string }).featureLevel === 'compatibility' ||
      options.requestAdapterOptions?.featureLevel === 'compatibility'
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
    return new Device(gpuDevice, description, options, options.keepAlive);
  }

  // ---------------------------------------------------------------- errors

  private recordError(err: GPUError, where: string): void {
    const msg = err.message;
    const label = /\[(?:ComputePipeline|ShaderModule|BindGroup)\w*\s+"+([^"]+)"+\]/.exec(msg)?.[1] ?? where;
    const isOom = (err as { constructor: { name: string } }).constructor?.name === 'GPUOutOfMemoryError';
    const e = isOom ? new OutOfMemoryError(`GPU out of memory: ${msg}`, 0) : new KernelError(`${label}: ${msg}`, label);
    if (!this.deferredError) this.deferredError = e;
  }

  /** Throws the first GPU error seen since the last check, or DeviceLostError if the device is gone. */
  throwIfFailed(): void {
    if (this.lostInfo && !this.destroyed) {
      throw new DeviceLostError(`WebGPU device lost (${this.lostInfo.reason}): ${this.lostInfo.message}`, this.lostInfo.reason);
    }
    if (this.destroyed) throw new DeviceLostError('device was destroyed', 'destroyed');
    const e = this.deferredError;
    if (e) {
      this.deferredError = null;
      throw e;
    }
  }

  /** Waits for queued GPU work and error scopes, then throws any error they produced. */
  async sync(): Promise<void> {
    this.flush();
    await this.gpuDevice.queue.onSubmittedWorkDone();
    this.throwIfFailed();
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
          buffer:
            kind === 'uniform'
              ? { type: 'uniform', hasDynamicOffset: true }
              : { type: kind === 'read' ? 'read-only-storage' : 'storage' },
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
    void this.gpuDevice.popErrorScope().then((err) => {
      if (err) {
        this.pipelines.delete(spec.key);
        if (!this.deferredError) this.deferredError = new KernelError(`kernel ${spec.key} failed to compile: ${err.message}`, spec.key);
      }
    });
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
      throw new KernelError(
        `kernel ${spec.key} failed to compile:\n` + errors.map((m) => `  ${m.lineNum}:${m.linePos} ${m.message}`).join('\n'),
        spec.key,
      );
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
    uniform: ArrayBufferView | null,
    workgroups: readonly [number, number, number],
  ): void {
    this.throwIfFailed();
    for (const n of workgroups) {
      if (!(n >= 0 && n <= MAX_WORKGROUPS_PER_DIM && Number.isInteger(n))) {
        throw new KernelError(`kernel ${spec.key}: workgroup count ${JSON.stringify(workgroups)} out of range (max ${MAX_WORKGROUPS_PER_DIM}/dim)`, spec.key);
      }
    }
    if (workgroups[0] * workgroups[1] * workgroups[2] === 0) return;
    const { pipeline, layout } = this.pipelineFor(spec);
    const hasUniform = spec.bindings.includes('uniform');
    if (hasUniform && !uniform) throw new KernelError(`kernel ${spec.key} needs uniforms`, spec.key);
    const uniformSize = hasUniform ? alignUp(uniform!.byteLength, 16) : 0;
    const bindGroup = this.bindGroupFor(spec, layout, buffers, uniformSize);
    // Offset taken after bindGroupFor: pushUniform may flush, which is harmless for cached groups.
    const dynamicOffsets = hasUniform ? [this.pushUniform(uniform!)] : [];
    const pass = this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup, dynamicOffsets);
    pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
    this.counters.dispatches++;
    if (++this.pendingDispatches >= this.maxDispatchesPerSubmit) this.flush();
  }

  /**
   * Bind groups are cached by (layout, buffer identities, uniform size): pooled buffers recur constantly in
   * training loops, and the uniform slot uses a dynamic offset, so a hit skips createBindGroup (~5 µs on Dawn).
   */
  private bindGroupFor(spec: KernelSpec, layout: GPUBindGroupLayout, buffers: readonly GPUBuffer[], uniformSize: number): GPUBindGroup {
    let key = spec.bindings.join(',') + '|' + uniformSize;
    for (const buf of buffers) key += ',' + this.bufferId(buf);
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
    if (!this.encoder) this.encoder = this.gpuDevice.createCommandEncoder();
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
    this.gpuDevice.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.pendingDispatches = 0;
    this.counters.submits++;
  }

  /** Records a buffer-to-buffer copy in the current batch. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.throwIfFailed();
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, alignUp(bytes, 4));
  }

  // ---------------------------------------------------------------- buffers

  private createStorageBuffer(size: number): GPUBuffer {
    const max = this.limits.maxBufferSize;
    if (size > max) throw new OutOfMemoryError(`cannot allocate ${size} bytes: adapter maxBufferSize is ${max}`, size);
    return this.gpuDevice.createBuffer({ size, usage: this.pool.usage });
  }

  /** Uploads host data into a buffer. Pending recorded work is submitted first so the write cannot overtake it. */
  write(buffer: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    this.throwIfFailed();
    if (this.encoder) this.flush();
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const padded = bytes.byteLength % 4 === 0 ? bytes : padTo4(bytes);
    this.gpuDevice.queue.writeBuffer(buffer, offset, padded as Uint8Array<ArrayBuffer>);
    this.counters.uploads++;
  }

  /** Reads `bytes` from a buffer back to the host (submits pending work, waits for it). */
  async read(buffer: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    const size = alignUp(Math.max(bytes, 4), 4);
    const staging = this.acquireStaging(size);
    this.copy(buffer, offset, staging, 0, size);
    this.flush();
    this.counters.readbacks++;
    try {
      await staging.mapAsync(1 /* READ */, 0, size);
    } catch (e) {
      this.throwIfFailed();
      throw e;
    }
    const out = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    this.stagingFree.push(staging);
    this.throwIfFailed();
    return out;
  }

  private acquireStaging(size: number): GPUBuffer {
    const i = this.stagingFree.findIndex((b) => b.size >= size && b.size <= size * 4);
    if (i >= 0) return this.stagingFree.splice(i, 1)[0];
    return this.gpuDevice.createBuffer({ size: Math.max(256, 2 ** Math.ceil(Math.log2(size))), usage: MAP_READ | COPY_DST, label: 'readback' });
  }

  // ---------------------------------------------------------------- memory

  /** Destroys pooled buffers (like torch.cuda.empty_cache); returns the bytes released. */
  emptyCache(): number {
    this.flush();
    this.bindGroups.clear();
    return this.pool.trim();
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
    for (const b of this.stagingFree) b.destroy();
    this.stagingFree.length = 0;
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
