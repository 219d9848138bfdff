/** @file Size-class GPU buffer pool: freed storage is reused instead of re-allocated (Dawn zero-fills new buffers). */

/** Usage every pooled storage buffer has, so any buffer can be a kernel input, output, upload or readback source. */
export const STORAGE_USAGE = 0x80 /* STORAGE */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */

const MIN_CLASS_BYTES = 256;
const POW2_LIMIT = 1 << 20;

/**
 * Rounds a request up to its size class: 256 B minimum, powers of two up to 1 MiB, then eight classes per
 * octave (≤ 12.5% waste) so large activations do not double their footprint.
 */
export function sizeClass(bytes: number): number {
  if (bytes <= MIN_CLASS_BYTES) return MIN_CLASS_BYTES;
  if (bytes <= POW2_LIMIT) return 2 ** Math.ceil(Math.log2(bytes));
  const octave = 2 ** Math.floor(Math.log2(bytes));
  const step = octave / 8;
  return Math.ceil(bytes / step) * step;
}

export interface PoolStats {
  /** Bytes sitting in free lists, ready for reuse. */
  bytesPooled: number;
  /** Bytes of all buffers this pool created and has not destroyed (pooled + handed out). */
  bytesAllocated: number;
  buffersAllocated: number;
}

export interface BufferPoolOptions {
  /**
   * Largest buffer the pool may create (the device's storage binding limit): a request that fits it but whose
   * size class does not gets a buffer of exactly this size; a larger request reaches `createBuffer`, which refuses.
   */
  maxBytes?: number;
  /** Buffers that must not be reused (content spoiled by a failed GPU batch): destroyed on release. */
  discard?: (buffer: GPUBuffer) => boolean;
}

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private stats: PoolStats = { bytesPooled: 0, bytesAllocated: 0, buffersAllocated: 0 };

  constructor(
    private readonly createBuffer: (size: number) => GPUBuffer,
    readonly usage: number = STORAGE_USAGE,
    private readonly options: BufferPoolOptions = {},
  ) {}

  /** Returns a buffer of at least `bytes` (its `size` is the class size). */
  acquire(bytes: number): GPUBuffer {
    const max = this.options.maxBytes ?? Infinity;
    const cls = bytes <= max ? Math.min(sizeClass(bytes), Math.floor(max / 4) * 4) : sizeClass(bytes);
    const list = this.free.get(cls);
    const reused = list?.pop();
    if (reused) {
      this.stats.bytesPooled -= cls;
      return reused;
    }
    const buffer = this.createBuffer(cls);
    this.stats.bytesAllocated += cls;
    this.stats.buffersAllocated += 1;
    return buffer;
  }

  /** Gives a buffer back for reuse. The caller guarantees no later-recorded command still needs its old content. */
  release(buffer: GPUBuffer): void {
    const cls = buffer.size;
    if (this.options.discard?.(buffer)) {
      this.stats.bytesAllocated -= cls;
      this.stats.buffersAllocated -= 1;
      buffer.destroy();
      return;
    }
    let list = this.free.get(cls);
    if (!list) {
      list = [];
      this.free.set(cls, list);
    }
    list.push(buffer);
    this.stats.bytesPooled += cls;
  }

  /** Destroys every pooled buffer (like torch.cuda.empty_cache). Buffers in use are untouched. */
  trim(): number {
    let freed = 0;
    for (const list of this.free.values()) {
      for (const b of list) {
        freed += b.size;
        this.stats.buffersAllocated -= 1;
        b.destroy();
      }
    }
    this.free.clear();
    this.stats.bytesPooled -= freed;
    this.stats.bytesAllocated -= freed;
    return freed;
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }
}
