/** @file GPU error recovery, readback staging, device names and device mixing (issue 14, items 3, 4, 8, 10). */
import { describe, it, expect } from 'vitest';
import { fillKernel } from '@metagrad/kernels-wgsl';
import {
  DeviceLostError,
  DeviceMismatchError,
  DisposedTensorError,
  InvalidArgumentError,
  KernelError,
  OutOfMemoryError,
  full,
  getDefaultDevice,
  setDefaultDevice,
  tensor,
  zeros,
  type Device,
} from '@metagrad/tensor';
import { add, concat, gather, indexSelect, oneHot, pad, scatterAdd } from '@metagrad/tensor/raw';
import { createNodeDevice } from '@metagrad/tensor/node';
import { useDevice, withFusion } from '../helpers/device';

const device = useDevice();
const STORAGE = 0x80;

/**
 * Records a dispatch the adapter refuses, in the current batch: a binding over maxStorageBufferBindingSize where
 * the adapter allows such a buffer (llvmpipe: 128 MiB binding, 2 GiB buffer), else a buffer over maxBufferSize
 * (SwiftShader: both 1 GiB). Returns the buffer to destroy afterwards.
 */
function breakBatch(d: Device): GPUBuffer {
  const size = Math.min(d.limits.maxStorageBufferBindingSize, d.limits.maxBufferSize) + 256;
  const buffer = d.gpuDevice.createBuffer({ size, usage: STORAGE });
  d.dispatch(fillKernel({ dtype: 'f32' }), [buffer], new Uint32Array([4, 0]), [1, 1, 1]);
  return buffer;
}

async function readTwice(x: ReturnType<typeof tensor>): Promise<number[][]> {
  const out: number[][] = [];
  for (let i = 0; i < 3; i++) {
    const y = add(x, x);
    out.push(Array.from(await y.toArray()));
    y.dispose();
  }
  return out;
}

describe('GPU error recovery', () => {
  it('a tensor over maxStorageBufferBindingSize is refused on the host, before allocating, with both figures', async () => {
    const d = device();
    const limit = d.limits.maxStorageBufferBindingSize;
    const before = d.memory();
    let err: unknown = null;
    try {
      zeros([limit / 4 + 1024]).dispose();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OutOfMemoryError);
    expect((err as OutOfMemoryError).requestedBytes).toBeGreaterThan(limit);
    expect((err as Error).message).toContain(`maxStorageBufferBindingSize ${limit}`);
    expect(d.memory().liveTensors).toBe(before.liveTensors);
    expect(d.memory().bytesInUse).toBe(before.bytesInUse);
    // No follow-on error, and later results are right (issue: add(x, x) read three times gave stale pool data).
    await expect(d.sync()).resolves.toBeUndefined();
    const x = tensor([1, 2, 3]);
    expect(await readTwice(x)).toEqual([
      [2, 4, 6],
      [2, 4, 6],
      [2, 4, 6],
    ]);
    x.dispose();
  });

  it('a failed batch is reported once as a named error; its outputs throw instead of returning stale data (fusion off: the add dispatches at the call)', async () => {
    const d = device();
    // `sameBatch` must be recorded before the failing dispatch; the fusion-on case is below
    await withFusion(d, false, async () => {
      await d.sync();
      const x = tensor([1, 2, 3, 4]);
      // Leave a pooled buffer full of 99s: a lost dispatch would show them.
      const stale = full([4], 99);
      await stale.toArray();
      stale.dispose();
      const sameBatch = add(x, x);
      // A binding the adapter refuses: the kind of error the host check above now prevents for tensors.
      const tooBig = breakBatch(d);
      const err = await d.sync().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(KernelError);
      expect((err as Error).message).toMatch(/storage buffer binding size|max buffer size/);
      // Reported once: no follow-on error at the next sync or op.
      await expect(d.sync()).resolves.toBeUndefined();
      await expect(sameBatch.toArray()).rejects.toThrow(/computed it .*failed/);
      sameBatch.dispose();
      expect(await readTwice(x)).toEqual([
        [2, 4, 6, 8],
        [2, 4, 6, 8],
        [2, 4, 6, 8],
      ]);
      tooBig.destroy();
      x.dispose();
    });
  });

  it('with fusion on: a value realised into the failed batch throws; one still pending then is computed afterwards, right', async () => {
    const d = device();
    await withFusion(d, true, async () => {
      await d.sync();
      const x = tensor([1, 2, 3, 4], [4], 'f32', d);
      const stale = full([4], 99, 'f32', d);
      await stale.toArray();
      stale.dispose();
      const realised = add(x, x);
      void realised.buffer; // its fused kernel joins the batch that fails
      const pending = add(x, x); // not computed until read, after the failure
      expect(pending.storage.pending).not.toBeNull();
      const tooBig = breakBatch(d);
      await expect(d.sync()).rejects.toBeInstanceOf(KernelError);
      await expect(d.sync()).resolves.toBeUndefined();
      await expect(realised.toArray()).rejects.toThrow(/computed it .*failed/);
      expect(Array.from(await pending.toArray())).toEqual([2, 4, 6, 8]);
      for (const t of [realised, pending, x]) t.dispose();
      tooBig.destroy();
    });
  });

  it('a kernel that fails to compile is reported once, by name, with no follow-on error for the batch it broke', async () => {
    const d = device();
    const x = tensor([1, 2]);
    const y = add(x, x);
    d.dispatch(
      {
        key: 'broken:gpu-errors',
        entryPoint: 'main',
        bindings: ['write'],
        workgroupSize: [1, 1, 1],
        code: '@group(0) @binding(0) var<storage, read_write> o: array<f32>;\n@compute @workgroup_size(1) fn main() { o[0] = nope; }',
      },
      [y.buffer],
      null,
      [1, 1, 1],
    );
    await expect(d.sync()).rejects.toThrow(/broken:gpu-errors failed to compile/);
    await expect(d.sync()).resolves.toBeUndefined();
    await expect(y.toArray()).rejects.toBeInstanceOf(KernelError);
    expect(await readTwice(x)).toEqual([
      [2, 4],
      [2, 4],
      [2, 4],
    ]);
    x.dispose();
    y.dispose();
  });

  it('an index error read back together with a GPU error is kept for the next check, not lost', async () => {
    const d = device();
    const x = tensor([1, 2, 3]);
    const i = tensor([5], [1], 'i32');
    const g = gather(x, 0, i);
    d.flush(); // the gather's batch runs and raises the bound flag
    const tooBig = breakBatch(d);
    d.flush(); // this batch fails
    await expect(d.sync()).rejects.toBeInstanceOf(KernelError);
    await expect(d.sync()).rejects.toThrow(/gather: index 5 is out of range \[0, 3\)/);
    await expect(d.sync()).resolves.toBeUndefined();
    for (const t of [x, i, g]) t.dispose();
    tooBig.destroy();
  });

  it('ops recorded after a GPU error neither throw nor leak; the error surfaces at the next sync', async () => {
    const d = device();
    const tooBig = breakBatch(d);
    d.flush();
    await new Promise((r) => setTimeout(r, 20)); // let the error arrive before the next op
    const live = d.memory().liveTensors;
    const x = tensor([1, 2]);
    const y = add(x, x);
    expect(d.memory().liveTensors).toBe(live + 2);
    await expect(d.sync()).rejects.toBeInstanceOf(KernelError);
    expect(Array.from(await y.toArray())).toEqual([2, 4]);
    x.dispose();
    y.dispose();
    tooBig.destroy();
  });
});

describe('readback staging', () => {
  it('thousands of small readbacks keep a bounded set of staging buffers; emptyCache frees them', async () => {
    const d = device();
    const t = tensor([1, 2, 3, 4, 5, 6, 7, 8]);
    const one = tensor([5]);
    for (let i = 0; i < 2000; i++) {
      expect(await one.item()).toBe(5);
      if (i % 100 === 0) await t.toArray();
    }
    // One buffer per size class in use (sequential reads), 256 B each here.
    expect(d.memory().bytesStaging).toBeGreaterThan(0);
    expect(d.memory().bytesStaging).toBeLessThanOrEqual(1024);
    d.emptyCache();
    expect(d.memory().bytesStaging).toBe(0);
    expect(await one.item()).toBe(5);
    t.dispose();
    one.dispose();
  });
});

describe('device names', () => {
  it('each device has its own label in GPU messages, and a destroyed one points to createNodeDevice', async () => {
    const d1 = device();
    const d2 = await createNodeDevice({ setDefault: false });
    try {
      expect(String(d2)).not.toBe(String(d1));
      expect(d2.gpuDevice.label).toBe(String(d2));
      const tooBig = breakBatch(d2);
      const err = await d2.sync().then(
        () => null,
        (e: unknown) => e,
      );
      expect((err as Error).message).toContain(String(d2));
      expect((err as Error).message).not.toContain('"metagrad"');
      tooBig.destroy();
    } finally {
      d2.destroy();
    }
    const err = (() => {
      try {
        zeros([2], 'f32', d2);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(DeviceLostError);
    expect((err as Error).message).toContain('createNodeDevice()');
    const prev = getDefaultDevice();
    setDefaultDevice(d2);
    try {
      expect(() => getDefaultDevice()).toThrow(DeviceLostError);
      expect(() => getDefaultDevice()).toThrow(/createNodeDevice\(\)/);
      expect(() => getDefaultDevice()).not.toThrow(/initNodeDevice/);
    } finally {
      setDefaultDevice(prev);
    }
  });
});

describe('device mixing and validation before allocation', () => {
  async function withSecondDevice(fn: (d2: Device) => void): Promise<void> {
    const d2 = await createNodeDevice({ setDefault: false });
    try {
      fn(d2);
    } finally {
      d2.destroy();
    }
  }

  it('concat, gather, indexSelect and scatterAdd refuse tensors from another device, allocating nothing', async () => {
    const d = device();
    await withSecondDevice((d2) => {
      const a = tensor([1, 2]);
      const b = tensor([3, 4], [2], 'f32', d2);
      const i = tensor([0, 1], [2], 'i32', d2);
      const src = tensor([1, 1], [2], 'f32', d2);
      const live = d.memory().liveTensors;
      expect(() => concat([a, b], 0)).toThrow(DeviceMismatchError);
      expect(() => gather(a, 0, i)).toThrow(DeviceMismatchError);
      expect(() => indexSelect(a, 0, i)).toThrow(DeviceMismatchError);
      expect(() => scatterAdd(a, 0, tensor([0, 1], [2], 'i32'), src)).toThrow(DeviceMismatchError);
      expect(() => scatterAdd(a, 0, i, tensor([1, 1]))).toThrow(DeviceMismatchError);
      expect(d.memory().liveTensors).toBe(live + 2); // the two index/src tensors made inline above, nothing else
      for (const t of [a, b, i, src]) t.dispose();
    });
  });

  it('a disposed input is refused before the output is allocated (concat, gather, indexSelect, scatterAdd, oneHot)', () => {
    const d = device();
    const a = tensor([1, 2]);
    const gone = tensor([3, 4]);
    const goneIndex = tensor([0, 1], [2], 'i32');
    gone.dispose();
    goneIndex.dispose();
    const live = d.memory().liveTensors;
    const bytes = d.memory().bytesInUse;
    expect(() => concat([a, gone], 0)).toThrow(DisposedTensorError);
    expect(() => gather(a, 0, goneIndex)).toThrow(DisposedTensorError);
    expect(() => indexSelect(a, 0, goneIndex)).toThrow(DisposedTensorError);
    expect(() => scatterAdd(a, 0, goneIndex, a)).toThrow(DisposedTensorError);
    expect(() => oneHot(goneIndex, 3)).toThrow(DisposedTensorError);
    expect(d.memory().liveTensors).toBe(live);
    expect(d.memory().bytesInUse).toBe(bytes);
    a.dispose();
  });

  it('fractional pads are an InvalidArgumentError (they used to be accepted when the pair summed to an integer)', () => {
    const x = tensor([1, 2, 3]);
    expect(() => pad(x, [[0.5, -0.5]])).toThrow(InvalidArgumentError);
    expect(() => pad(x, [[0.5, 0.5]])).toThrow(InvalidArgumentError);
    expect(() => pad(x, [null as unknown as [number, number]])).toThrow(InvalidArgumentError);
    expect(() => pad(x, 3 as unknown as [number, number][])).toThrow(InvalidArgumentError);
    x.dispose();
  });

  it('gather of a scalar leaves no views behind', async () => {
    const d = device();
    const live = d.memory().liveTensors;
    const x = tensor([7], []);
    const i = tensor([0], [], 'i32');
    const y = gather(x, 0, i);
    expect(await y.item()).toBe(7);
    for (const t of [x, i, y]) t.dispose();
    expect(d.memory().liveTensors).toBe(live);
  });
});
