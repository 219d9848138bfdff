/** @file Lazy expand (fusion on): a broadcast of a value is a leaf read of the consumer's expression, not a copy. */
import { describe, it, expect, afterEach } from 'vitest';
import * as raw from '@metagrad/tensor/raw';
import { setFusion, tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { useDevice, withFusion } from '../helpers/device';

const device = useDevice();
afterEach(() => setFusion(device(), undefined));

const fused = <T>(on: boolean, fn: () => T): T => withFusion(device(), on, fn);
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const data = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7.1 + i * 1.3) * (1 + (i % 5)));

describe('lazy expand', () => {
  const cases: { from: number[]; to: number[] }[] = [
    { from: [], to: [4, 5] },
    { from: [1], to: [100, 1] },
    { from: [5], to: [3, 4, 5] },
    { from: [3, 1], to: [3, 4] },
    { from: [2, 1, 3], to: [-1, 6, -1] },
    { from: [1, 1], to: [1, 1] },
  ];
  it('expand of a realised or a pending value, then an elementwise consumer: one dispatch (plus one to compute a pending value that grows), equal to eager', async () => {
    const d = device();
    for (const [i, c] of cases.entries()) {
      for (const pendingInput of [false, true]) {
        const run = (on: boolean) =>
          fused(on, () => {
            const x = tensor(data(size(c.from), i), c.from, 'f32', d);
            const before = d.counters.dispatches;
            const src = pendingInput ? raw.mulScalar(raw.tanh(x), 3) : x;
            const e = raw.expand(src, c.to);
            const z = raw.addScalar(raw.mul(e, e), 1);
            const e2 = raw.expand(src, c.to); // read as is
            void z.buffer;
            void e2.buffer;
            const count = d.counters.dispatches - before;
            raw.dispose([e, src, x]);
            return { outs: [z, e2], count };
          });
        const on = run(true);
        const off = run(false);
        const what = `${JSON.stringify(c)} pending=${pendingInput}`;
        expect(on.outs[0].shape, what).toEqual(off.outs[0].shape);
        // eager: (tanh, mulScalar,) expand, mul, addScalar, expand (an expand to the same size is a buffer copy, no
        // dispatch); fused: z and e2 one kernel each, after one that computes a pending value broadcast into a
        // larger output (computed once, not per output element).
        const grows = size(c.from) < size(on.outs[1].shape);
        expect(off.count, what).toBe((pendingInput ? 4 : 2) + (grows ? 2 : 0));
        expect(on.count, what).toBe(2 + (pendingInput && grows ? 1 : 0));
        for (let k = 0; k < 2; k++) expect(Array.from(await on.outs[k].toArray()), what).toEqual(Array.from(await off.outs[k].toArray()));
        raw.dispose([...on.outs, ...off.outs]);
      }
    }
  });

  it('a pending value broadcast into a larger output is computed once first, whatever its view: two dispatches', async () => {
    const d = device();
    for (const view of [
      [1, 32],
      [1, 1, 32],
      [32, 1],
    ]) {
      const run = (on: boolean) =>
        fused(on, () => {
          const v = tensor(data(32, 3), [32], 'f32', d);
          const full = tensor(data(100 * 32, 4), view[view.length - 1] === 1 ? [32, 100] : [...view.slice(0, -2), 100, 32], 'f32', d);
          const before = d.counters.dispatches;
          const p = raw.tanh(v);
          const r = raw.reshape(p, view);
          const z = raw.mul(raw.expand(r, full.shape), full);
          void z.buffer;
          const count = d.counters.dispatches - before;
          raw.dispose([v, full, p, r]);
          return { z, count };
        });
      const on = run(true);
      const off = run(false);
      expect(on.count, view.join('x')).toBe(2);
      expect(Array.from(await on.z.toArray()), view.join('x')).toEqual(Array.from(await off.z.toArray()));
      raw.dispose([on.z, off.z]);
    }
  });

  it('integer and empty expands stay eager; memory figures equal eager; the VJP of mean/sum is lazy', async () => {
    const d = device();
    await fused(true, async () => {
      const ix = tensor(Int32Array.from([1, 2, 3]), [3, 1], 'i32', d);
      const ie = raw.expand(ix, [3, 2]);
      expect(Array.from(await ie.toArray())).toEqual([1, 1, 2, 2, 3, 3]);
      const z = raw.expand(tensor(data(3, 1), [3, 1], 'f32', d), [3, 0]);
      expect(z.shape).toEqual([3, 0]);
      raw.dispose([ix, ie, z]);
    });
    const run = (on: boolean) =>
      fused(on, () => {
        const base = d.memory();
        const x = ag.requiresGrad(tensor(data(100 * 32, 2), [100, 32], 'f32', d));
        const before = d.counters.dispatches;
        const [g] = ag.enableGrad(() => {
          const l = ag.add(ag.mean(ag.tanh(x)), ag.sum(ag.square(x)));
          const r = ag.grad(l, [x]);
          l.dispose();
          return r;
        });
        void g.buffer;
        const count = d.counters.dispatches - before;
        const mem = [d.memory().bytesInUse - base.bytesInUse, d.memory().liveTensors - base.liveTensors];
        x.dispose();
        return { g, count, mem };
      });
    const on = run(true);
    const off = run(false);
    expect(on.mem).toEqual(off.mem);
    expect(on.count).toBeLessThan(off.count);
    const [a, b] = [await on.g.toArray(), await off.g.toArray()];
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(b[i])));
    raw.dispose([on.g, off.g]);
  });
});
