import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { axpyKernel, fillKernel, linearDispatch, type KernelSpec } from '@metagrad/kernels-wgsl';
import { DisposedTensorError, KernelError, DeviceLostError, ShapeError, full, tensor, tidy, keep, zeros, sizeClass, Device } from '@metagrad/tensor';
import { availableAdapters, createNodeDevice } from '@metagrad/tensor/node';
import { useDevice } from '../helpers/device';

const device = useDevice();

function axpyUniform(n: number, a: number): Uint32Array {
  const w = new Uint32Array(4);
  w[0] = n;
  new Float32Array(w.buffer)[1] = a;
  return w;
}

describe('adapter acquisition', () => {
  it('gets the default adapter with the requested limits', () => {
    const d = device();
    expect(['hardware', 'llvmpipe', 'swiftshader']).toContain(d.adapter.name);
    expect(d.limits.maxStorageBuffersPerShaderStage).toBeGreaterThanOrEqual(8);
    expect(d.limits.maxComputeInvocationsPerWorkgroup).toBeGreaterThanOrEqual(256);
  });

  it('runs a kernel on every available adapter', async () => {
    const names = await availableAdapters();
    expect(names.length).toBeGreaterThan(0);
    for (const adapter of names) {
      const d = await createNodeDevice({ adapter, setDefault: false });
      try {
        const x = tensor([1, 2, 3, 4, 5], [5], 'f32', d);
        const y = full([5], 10, 'f32', d);
        d.dispatch(axpyKernel(), [x.buffer, y.buffer], axpyUniform(5, 2), linearDispatch(5));
        expect(Array.from(await y.toArray()), adapter).toEqual([12, 14, 16, 18, 20]);
        x.dispose();
        y.dispose();
      } finally {
        d.destroy();
      }
    }
  });

  it('rejects an unknown METAGRAD_ADAPTER value by name', async () => {
    const prev = process.env.METAGRAD_ADAPTER;
    process.env.METAGRAD_ADAPTER = 'quantum';
    try {
      await expect(createNodeDevice({ setDefault: false })).rejects.toThrow(/METAGRAD_ADAPTER='quantum'/);
    } finally {
      if (prev === undefined) delete process.env.METAGRAD_ADAPTER;
      else process.env.METAGRAD_ADAPTER = prev;
    }
  });
});

describe('dispatch batching', () => {
  it('keeps order across many dispatches and several automatic submits', async () => {
    const d = device();
    const n = 3000;
    const x = full([n], 1);
    const y = zeros([n]);
    const submitsBefore = d.counters.submits;
    const count = d.maxDispatchesPerSubmit * 2 + 17;
    for (let i = 0; i < count; i++) d.dispatch(axpyKernel(), [x.buffer, y.buffer], axpyUniform(n, 1), linearDispatch(n));
    // Overwrite then accumulate again: order matters.
    d.dispatch(fillKernel({ dtype: 'f32' }), [y.buffer], new Uint32Array([n, 0]), linearDispatch(n));
    for (let i = 0; i < 5; i++) d.dispatch(axpyKernel(), [x.buffer, y.buffer], axpyUniform(n, 2), linearDispatch(n));
    const out = await y.toArray();
    expect(out[0]).toBe(10);
    expect(out[n - 1]).toBe(10);
    expect(d.counters.submits - submitsBefore).toBeGreaterThanOrEqual(2);
    x.dispose();
    y.dispose();
  });

  it('an upload after recorded work does not overtake it', async () => {
    const a = full([8], 5);
    const b = tensor([1, 1, 1, 1, 1, 1, 1, 1]);
    device().dispatch(axpyKernel(), [a.buffer, b.buffer], axpyUniform(8, 1), linearDispatch(8)); // b = 6
    a.dispose(); // its buffer returns to the pool and may be the next upload's target
    const c = tensor([7, 7, 7, 7, 7, 7, 7, 7]);
    expect(Array.from(await b.toArray())).toEqual([6, 6, 6, 6, 6, 6, 6, 6]);
    expect(Array.from(await c.toArray())).toEqual([7, 7, 7, 7, 7, 7, 7, 7]);
    b.dispose();
    c.dispose();
  });
});

describe('buffer pool and memory accounting', () => {
  it('size classes round up sensibly', () => {
    expect(sizeClass(1)).toBe(256);
    expect(sizeClass(257)).toBe(512);
    expect(sizeClass(1 << 20)).toBe(1 << 20);
    expect(sizeClass((1 << 20) + 1)).toBe((1 << 20) + (1 << 17));
    for (const n of [3000, 70000, 5e6, 123456789]) {
      expect(sizeClass(n)).toBeGreaterThanOrEqual(n);
      expect(sizeClass(n)).toBeLessThanOrEqual(Math.max(256, n * 2));
    }
  });

  it('reuses pooled buffers instead of allocating', () => {
    const d = device();
    const t = zeros([1000]);
    t.dispose();
    const before = d.memory().bytesAllocated;
    for (let i = 0; i < 20; i++) zeros([1000]).dispose();
    expect(d.memory().bytesAllocated).toBe(before);
  });

  it('tracks bytesInUse, liveTensors and the peak exactly', () => {
    const d = device();
    const base = d.memory();
    d.resetPeak();
    const a = zeros([100]); // 400 B
    const b = zeros([250]); // 1000 B
    expect(d.memory().bytesInUse - base.bytesInUse).toBe(1400);
    expect(d.memory().liveTensors - base.liveTensors).toBe(2);
    a.dispose();
    const c = zeros([10, 10, 3]); // 1200 B
    expect(d.memory().peakBytesInUse - base.bytesInUse).toBe(2200);
    d.resetPeak();
    expect(d.memory().peakBytesInUse - base.bytesInUse).toBe(2200);
    b.dispose();
    c.dispose();
    expect(d.memory().bytesInUse).toBe(base.bytesInUse);
    d.resetPeak();
    expect(d.memory().peakBytesInUse).toBe(base.bytesInUse);
    expect(d.memory().liveTensors).toBe(base.liveTensors);
    expect(d.memory().bytesPooled).toBeGreaterThan(0);
  });

  it('views share storage: bytes freed only when the last handle goes', () => {
    const d = device();
    const base = d.memory().bytesInUse;
    const a = zeros([4, 6]);
    const v = a.view([24]);
    expect(d.memory().bytesInUse - base).toBe(96);
    a.dispose();
    expect(d.memory().bytesInUse - base).toBe(96);
    v.dispose();
    expect(d.memory().bytesInUse).toBe(base);
  });

  it('tidy disposes intermediates and keeps results', () => {
    const d = device();
    const base = d.memory();
    let kept!: ReturnType<typeof zeros>;
    const out = tidy(() => {
      zeros([10]);
      kept = keep(zeros([3]));
      return { r: [zeros([5])] };
    });
    expect(d.memory().liveTensors - base.liveTensors).toBe(2);
    out.r[0].dispose();
    kept.dispose();
    expect(d.memory().liveTensors).toBe(base.liveTensors);
    expect(d.memory().bytesInUse).toBe(base.bytesInUse);
  });
});

describe('errors', () => {
  it('using a disposed tensor is a DisposedTensorError', async () => {
    const t = zeros([3]);
    t.dispose();
    await expect(t.toArray()).rejects.toBeInstanceOf(DisposedTensorError);
    expect(() => t.buffer).toThrow(DisposedTensorError);
  });

  it('bad shapes show the shapes', () => {
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow(ShapeError);
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow(/\[2, 2\]/);
    expect(() => zeros([2, -1])).toThrow(/invalid dimension/);
  });

  const bad: KernelSpec = {
    key: 'broken:test',
    entryPoint: 'main',
    bindings: ['write'],
    workgroupSize: [1, 1, 1],
    code: '@group(0) @binding(0) var<storage, read_write> o: array<f32>;\n@compute @workgroup_size(1) fn main() { o[0] = undefined_thing; }',
  };

  it('a bad WGSL kernel surfaces as KernelError with its label (compile)', async () => {
    const err = await device()
      .compile(bad)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelError);
    expect((err as KernelError).kernel).toBe('broken:test');
    expect((err as Error).message).toMatch(/undefined_thing/);
  });

  it('a bad WGSL kernel surfaces as KernelError at the next sync (dispatch)', async () => {
    const d = device();
    const t = zeros([4]);
    d.dispatch({ ...bad, key: 'broken:test2' }, [t.buffer], null, [1, 1, 1]);
    await expect(d.sync()).rejects.toBeInstanceOf(KernelError);
    // The device stays usable afterwards.
    expect(Array.from(await full([2], 4).toArray())).toEqual([4, 4]);
    t.dispose();
  });

  it('too many workgroups is refused up front instead of silently dropped', () => {
    const t = zeros([4]);
    expect(() => device().dispatch(fillKernel({ dtype: 'f32' }), [t.buffer], new Uint32Array([4, 0]), [70000, 1, 1])).toThrow(KernelError);
    t.dispose();
  });

  it('a destroyed device raises DeviceLostError', async () => {
    const d = await createNodeDevice({ setDefault: false });
    const t = zeros([4], 'f32', d);
    d.destroy();
    expect(() => zeros([4], 'f32', d)).toThrow(DeviceLostError);
    expect(d).toBeInstanceOf(Device);
    void t;
  });
});

describe('shutdown', () => {
  it('a Node process exits by itself after destroy()', () => {
    const script = `
      import { createNodeDevice } from '@metagrad/tensor/node';
      import { full } from '@metagrad/tensor';
      const d = await createNodeDevice();
      const t = full([1024], 2);
      console.log('sum', (await t.toArray()).reduce((a, b) => a + b, 0));
      d.destroy();`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: process.cwd(),
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/sum 2048/);
  });
});
