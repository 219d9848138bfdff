/** @file Readback staging buffers, reused by power-of-two size class and counted, so small reads cannot pile up. */

const MAP_READ = 0x01;
const COPY_DST = 0x08;
const MIN_STAGING_BYTES = 256;
/** Free buffers kept per size class; readbacks rarely overlap, so a few cover concurrent reads. */
const KEEP_PER_CLASS = 4;

/** The staging size class for a read of `bytes`: 256 B minimum, else the next power of two. */
export function stagingClass(bytes: number): number {
  return Math.max(MIN_STAGING_BYTES, 2 ** Math.ceil(Math.log2(Math.max(1, bytes))));
}

export class StagingPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  /** Bytes of staging buffers alive: cached for reuse or in flight. */
  bytes = 0;

  constructor(private readonly gpuDevice: GPUDevice) {}

  /** A MAP_READ buffer of the class of `bytes` (a 4 B and a 200 B read share the 256 B class). */
  acquire(bytes: number): GPUBuffer {
    const cls = stagingClass(bytes);
    const hit = this.free.get(cls)?.pop();
    if (hit) return hit;
    this.bytes += cls;
    return this.gpuDevice.createBuffer({ size: cls, usage: MAP_READ | COPY_DST, label: 'readback' });
  }

  /** Returns an unmapped buffer for reuse (destroyed if its class already holds enough). */
  release(buffer: GPUBuffer): void {
    let list = this.free.get(buffer.size);
    if (!list) {
      list = [];
      this.free.set(buffer.size, list);
    }
    if (list.length < KEEP_PER_CLASS) list.push(buffer);
    else this.discard(buffer);
  }

  /** Destroys a buffer that cannot be reused (a failed map leaves it in an unknown state). */
  discard(buffer: GPUBuffer): void {
    this.bytes -= buffer.size;
    buffer.destroy();
  }

  /** Destroys every cached buffer; returns the bytes freed. */
  trim(): number {
    let freed = 0;
    for (const list of this.free.values()) {
      for (const b of list) {
        freed += b.size;
        b.destroy();
      }
    }
    this.free.clear();
    this.bytes -= freed;
    return freed;
  }
}
