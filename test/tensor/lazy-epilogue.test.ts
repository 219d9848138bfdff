/** @file Matmul epilogues (lazy fusion): an elementwise consumer of a pending matmul runs in the matmul kernel's store. */
import { describe, it, expect, afterEach } from 'vitest';
import * as raw from '@metagrad/tensor/raw';
import { matmulKernel, type MatmulKernelKey } from '@metagrad/kernels-wgsl';
import { setFusion, tensor, type MatmulVariant, type Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import * as ref from '../../packages/tensor/src/reference/index';
import type { RefTensor } from '../../packages/tensor/src/reference/index';
import { useDevice, withFusion } from '../helpers/device';
import { data, expectClose } from '../helpers/lazy';

const device = useDevice();
afterEach(() => setFusion(device(), undefined));

const fused = <T>(on: boolean, fn: () => T): T => withFusion(device(), on, fn);
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

const VARIANTS: Record<string, MatmulVariant | undefined> = {
  tuned: undefined,
  simple: { kind: 'simple' },
  'register 4x8': { kind: 'register', rows: 4, cols: 8, wgX: 8, wgY: 4 },
  'register 8x16': { kind: 'register', rows: 8, cols: 16, wgX: 8, wgY: 4 },
  'register 1x4': { kind: 'register', rows: 1, cols: 4, wgX: 8, wgY: 4 },
  workgroup: { kind: 'workgroup', tileM: 32, tileN: 32, tileK: 16, threadRows: 4, threadCols: 4 },
};

interface Case {
  a: number[];
  b: number[];
  transA?: boolean;
  transB?: boolean;
}
const CASES: Case[] = [
  { a: [100, 32], b: [32, 32], transB: true }, // a Linear layer (Bᵀ read as stored)
  { a: [100, 32], b: [100, 32], transA: true }, // a weight gradient (Aᵀ)
  { a: [5, 7], b: [7, 9] }, // odd sizes: packed operands, scalar stores
  { a: [3, 5, 8], b: [3, 8, 12] }, // batched
  { a: [2, 1, 6, 4], b: [3, 4, 10] }, // broadcast batch dims
  { a: [1, 3], b: [3, 1] }, // one element
  { a: [3, 12, 20], b: [3, 12, 8], transA: true }, // batched Aᵀ read as stored, a clamped row group (M = 20)
  { a: [2, 16, 12], b: [8, 16], transA: true, transB: true }, // Aᵀ and Bᵀ as stored, B broadcast over the batch
  { a: [8, 6], b: [8, 5], transA: true }, // Aᵀ with M = 6: packed
];

/** Output dims of a case. */
function outShape(c: Case): number[] {
  const [a0, a1] = c.a.slice(-2);
  const [b0, b1] = c.b.slice(-2);
  const batchA = c.a.slice(0, -2);
  const batchB = c.b.slice(0, -2);
  const rank = Math.max(batchA.length, batchB.length);
  const pad = (s: number[]) => [...Array<number>(rank - s.length).fill(1), ...s];
  const batch = pad(batchA).map((d, i) => Math.max(d, pad(batchB)[i]));
  return [...batch, c.transA ? a1 : a0, c.transB ? b0 : b1];
}

/** Epilogue forms: each takes the product and the case's side inputs; `ops` = elementwise dispatches eagerly. */
interface Form {
  name: string;
  ops: number;
  /** Side inputs' shapes given the product's shape. */
  sides: (out: number[]) => number[][];
  apply: (y: Tensor, s: Tensor[]) => Tensor;
}
const FORMS: Form[] = [
  { name: 'bias + tanh', ops: 2, sides: (o) => [[o[o.length - 1]]], apply: (y, [b]) => raw.tanh(raw.add(y, b)) },
  { name: 'scale', ops: 1, sides: () => [], apply: (y) => raw.mulScalar(y, 0.37) },
  { name: 'relu', ops: 1, sides: () => [], apply: (y) => raw.relu(y) },
  {
    name: "tanh' product g·(1 − h²)",
    ops: 4,
    sides: (o) => [o],
    apply: (g, [h]) => raw.mul(g, raw.addScalar(raw.neg(raw.square(h)), 1)),
  },
  {
    name: 'column bias (broadcast over columns) − full',
    ops: 2,
    sides: (o) => [[...o.slice(0, -1), 1], o],
    apply: (y, [c, z]) => raw.sub(raw.add(y, c), z),
  },
  { name: 'θ − lr·g (an SGD step)', ops: 2, sides: (o) => [o], apply: (g, [w]) => raw.sub(w, raw.mulScalar(g, 0.01)) },
];

describe('matmul epilogues', () => {
  for (const [vname, variant] of Object.entries(VARIANTS)) {
    it(`${vname}: every epilogue form == eager (fusion off), one dispatch fewer per elementwise op`, async () => {
      const d = device();
      for (const [ci, c] of CASES.entries()) {
        // The 8×16 register kernels take seconds each to build on llvmpipe: two forms and four cases there.
        if (vname === 'register 8x16' && ![0, 1, 3, 6].includes(ci)) continue;
        for (const form of vname === 'register 8x16' ? [FORMS[0], FORMS[3]] : FORMS) {
          const o = outShape(c);
          const what = `${vname} ${JSON.stringify(c)} ${form.name}`;
          const run = (on: boolean) =>
            fused(on, () => {
              const a = tensor(data(size(c.a), ci + 1), c.a, 'f32', d);
              const b = tensor(data(size(c.b), ci + 7), c.b, 'f32', d);
              const sides = form.sides(o).map((s, k) => tensor(data(size(s), ci + 13 + k), s, 'f32', d));
              const rec = d.beginRecording();
              let z: Tensor;
              try {
                const y = raw.matmul(a, b, { transA: c.transA, transB: c.transB, variant });
                z = form.apply(y, sides);
                y.dispose();
                void z.buffer;
              } finally {
                d.endRecording();
              }
              const keys = rec.commands.flatMap((cmd) => (cmd.k === 'dispatch' ? [cmd.spec.key] : []));
              const packs = keys.filter((k) => k.startsWith('matmul:pack')).length;
              const count = keys.length - packs;
              raw.dispose([a, b, ...sides]);
              return { z, count, packs };
            });
          const on = run(true);
          const off = run(false);
          expect(on.z.shape, what).toEqual(off.z.shape);
          // One dispatch (the matmul with its epilogue) instead of the matmul and one per elementwise op; with fusion
          // on, Aᵀ of a register variant is read as stored (no packing dispatch) when M and K are multiples of 4.
          expect(on.count, what).toBe(1);
          expect(off.count, what).toBe(1 + form.ops);
          expect(on.packs, what).toBeLessThanOrEqual(off.packs);
          if (c.transA && variant?.kind === 'register' && variant.rows % 4 === 0 && outShape(c).at(-2)! % 4 === 0) expect(on.packs, what).toBe(off.packs - 1);
          expectClose(await on.z.toArray(), await off.z.toArray(), what);
          raw.dispose([on.z, off.z]);
        }
      }
    });
  }

  it('the raw product and live inner values are extra outputs of the one dispatch', async () => {
    const d = device();
    for (const variant of Object.values(VARIANTS)) {
      const run = (on: boolean) =>
        fused(on, () => {
          const a = tensor(data(100 * 32, 1), [100, 32], 'f32', d);
          const w = tensor(data(32 * 32, 2), [32, 32], 'f32', d);
          const bias = tensor(data(32, 3), [32], 'f32', d);
          const before = d.counters.dispatches;
          const y = raw.matmul(a, w, { transB: true, variant });
          const pre = raw.add(y, bias);
          const h = raw.tanh(pre);
          void h.buffer;
          const count = d.counters.dispatches - before;
          raw.dispose([a, w, bias]);
          return { outs: [y, pre, h], count };
        });
      const on = run(true);
      const off = run(false);
      expect(on.count).toBe(off.count - 2);
      for (let k = 0; k < 3; k++) expectClose(await on.outs[k].toArray(), await off.outs[k].toArray(), `${JSON.stringify(variant)} output ${k}`);
      raw.dispose([...on.outs, ...off.outs]);
    }
  });

  it('rule cases: a product broadcast into a larger output, two products in one expression, a reduction of an epilogue, dot', async () => {
    const d = device();
    const run = (on: boolean) =>
      fused(on, () => {
        const a = tensor(data(6 * 5, 1), [6, 5], 'f32', d);
        const b = tensor(data(5 * 1, 2), [5, 1], 'f32', d);
        const c = tensor(data(5 * 4, 3), [5, 4], 'f32', d);
        const z = tensor(data(6 * 4, 4), [6, 4], 'f32', d);
        const col = raw.matmul(a, b); // [6, 1]: broadcast into [6, 4] → realised first
        const wide = raw.matmul(a, c); // [6, 4]
        const wide2 = raw.matmul(a, c);
        const r1 = raw.mul(raw.add(col, z), wide); // col realised, wide as the epilogue's product
        const r2 = raw.add(raw.tanh(wide2), raw.exp(raw.matmul(a, c))); // two products: one realised
        const r3 = raw.mean(raw.square(raw.addScalar(raw.add(raw.matmul(a, c), z), -0.5)));
        const r4 = raw.dot(raw.reshape(raw.matmul(a, c), [24]), raw.reshape(z, [24]));
        const r5 = raw.sum(raw.matmul(a, c), 1);
        // Aᵀ read as stored by the register kernel, product read plainly (no epilogue) and through an epilogue.
        const g = tensor(data(12 * 8, 5), [12, 8], 'f32', d);
        const reg = { kind: 'register', rows: 4, cols: 8, wgX: 8, wgY: 4 } as const;
        const r6 = raw.matmul(g, raw.reshape(raw.matmul(a, c), [12, 2]), { transA: true, variant: reg });
        const r7 = raw.relu(raw.matmul(g, g, { transA: true, variant: reg }));
        raw.dispose([a, b, c, z, col, wide, wide2, g]);
        return [r1, r2, r3, r4, r5, r6, r7];
      });
    const on = run(true);
    const off = run(false);
    for (let k = 0; k < on.length; k++) expectClose(await on[k].toArray(), await off[k].toArray(), `result ${k}`);
    raw.dispose([...on, ...off]);
  });

  it('operands disposed or written in place before the product is read; a product dropped unread is never computed', async () => {
    const d = device();
    await fused(true, async () => {
      const a = tensor(data(8 * 4, 1), [8, 4], 'f32', d);
      const b = tensor(data(4 * 8, 2), [4, 8], 'f32', d);
      const want = await raw.matmul(a, b).toArray();
      const y = raw.matmul(a, b);
      const t = raw.tanh(y);
      raw.dispose([a, b, y]); // the pending tanh(a @ b) retains a and b
      const junk = raw.matmul(tensor(data(8 * 4, 5), [8, 4], 'f32', d), tensor(data(4 * 8, 6), [4, 8], 'f32', d)); // reuses pooled buffers
      expectClose(await t.toArray(), Float32Array.from(want, Math.tanh), 'disposed operands');
      junk.dispose();

      // In-place write into an operand: the pending product is computed from the old values first.
      const p = tensor(data(8 * 4, 1), [8, 4], 'f32', d);
      const q = tensor(data(4 * 8, 2), [4, 8], 'f32', d);
      const prod = raw.mulScalar(raw.matmul(p, q), 2);
      d.write(p.bufferForInPlaceWrite(), new Float32Array(32).fill(7));
      expect(Array.from(await p.toArray())).toEqual(Array(32).fill(7));
      expectClose(
        await prod.toArray(),
        Float32Array.from(want, (v) => 2 * v),
        'in-place write after a lazy matmul',
      );
      raw.dispose([p, q, prod, t]);

      // Dropped unread: no dispatch.
      const e = tensor(data(8 * 4, 1), [8, 4], 'f32', d);
      const before = d.counters.dispatches;
      const dropped = raw.relu(raw.matmul(e, e, { transB: true }));
      dropped.dispose();
      expect(d.counters.dispatches - before).toBe(0);
      e.dispose();
    });
  });

  it('memory: bytesInUse, liveTensors and the peak of an MLP forward + backward equal eager', async () => {
    const d = device();
    const run = (on: boolean) =>
      fused(on, () => {
        const x = tensor(data(100 * 2, 1), [100, 2], 'f32', d);
        const y = tensor(data(100, 2), [100, 1], 'f32', d);
        const ps = [
          [tensor(data(32 * 2, 3), [32, 2], 'f32', d), tensor(data(32, 4), [32], 'f32', d)],
          [tensor(data(32 * 32, 5), [32, 32], 'f32', d), tensor(data(32, 6), [32], 'f32', d)],
          [tensor(data(32, 7), [1, 32], 'f32', d), tensor(data(1, 8), [1], 'f32', d)],
        ].map((l) => l.map((t) => ag.requiresGrad(t)));
        d.peakBytesInUse = d.memory().bytesInUse;
        const base = d.memory();
        const trace: number[][] = [];
        const loss = ag.enableGrad(() => mlpLoss(ps, x, y));
        trace.push([d.memory().bytesInUse - base.bytesInUse, d.memory().liveTensors - base.liveTensors]);
        const gs = ag.enableGrad(() => ag.grad(loss, ps.flat(), { createGraph: true }));
        trace.push([d.memory().bytesInUse - base.bytesInUse, d.memory().liveTensors - base.liveTensors]);
        const gg = ag.enableGrad(() => {
          const s = ag.sum(ag.square(gs[2]));
          const r = ag.grad(s, [ps[0][0]]);
          s.dispose();
          return r;
        });
        trace.push([d.memory().bytesInUse - base.bytesInUse, d.memory().liveTensors - base.liveTensors]);
        const outs = [loss, ...gs, ...gg];
        const peak = d.memory().peakBytesInUse - base.bytesInUse;
        raw.dispose([x, y, ...ps.flat()]);
        return { outs, trace, peak };
      });
    const on = run(true);
    const off = run(false);
    expect(on.trace).toEqual(off.trace);
    expect(on.peak).toBe(off.peak);
    for (let k = 0; k < on.outs.length; k++) expectClose(await on.outs[k].toArray(), await off.outs[k].toArray(), `output ${k}`);
    raw.dispose([...on.outs, ...off.outs]);
  });

  it('gradcheck and gradgradcheck of an MLP loss with fusion on', async () => {
    const d = device();
    const sizes = [[5, 3], [5], [4, 5], [4], [1, 4], [1]];
    const x = Float64Array.from(data(6 * 3, 9));
    const yv = Float64Array.from(data(6, 10));
    const f = {
      gpu: (...p: Tensor[]) => {
        const xt = tensor(Float32Array.from(x), [6, 3], 'f32', d);
        const yt = tensor(Float32Array.from(yv), [6, 1], 'f32', d);
        const out = mlpLoss(
          [
            [p[0], p[1]],
            [p[2], p[3]],
            [p[4], p[5]],
          ],
          xt,
          yt,
        );
        raw.dispose([xt, yt]);
        return out;
      },
      ref: (...p: { shape: readonly number[]; data: Float64Array }[]) => {
        const r = p as RefTensor[];
        let h: RefTensor = { shape: [6, 3], data: x } as RefTensor;
        for (let l = 0; l < 3; l++) {
          const lin = ref.add(ref.matmul(h, r[2 * l], { transB: true }), r[2 * l + 1]);
          h = l < 2 ? ref.mapUnary(lin, Math.tanh) : lin;
        }
        const diff = ref.sub(h, { shape: [6, 1], data: yv } as RefTensor);
        return ref.mean(ref.mapUnary(diff, (v) => v * v));
      },
    };
    const inputs = sizes.map((s, k) => ({ shape: s, data: Float64Array.from(data(size(s), 20 + k, -0.8, 0.8)) }));
    await fused(true, async () => {
      const before = d.counters.dispatches;
      const first = await ag.gradcheck(f, inputs, { raise: false, device: d });
      expect(first.failures).toEqual([]);
      const second = await ag.gradgradcheck(f, inputs, { raise: false, device: d });
      expect(second.failures).toEqual([]);
      expect(d.counters.dispatches).toBeGreaterThan(before);
    });
  });

  it('fusion off: the matmul kernels and their keys are unchanged (no epilogue)', () => {
    const keys: [MatmulKernelKey, string][] = [
      [{ kind: 'simple' }, 'matmul:simple:f32:2b7romdkk7p'],
      [{ kind: 'register', rows: 4, cols: 8, wgX: 8, wgY: 4, vecOut: true }, 'matmul:reg:f32:4x8:wg8x4:v4out:bymb2sva2y'],
      [{ kind: 'register', rows: 4, cols: 8, wgX: 8, wgY: 4, vecOut: true, transB: true }, 'matmul:reg:f32:4x8:wg8x4:v4out:bT:1krvbdimzyz'],
      [{ kind: 'register', rows: 4, cols: 4, wgX: 8, wgY: 4, vecOut: false, transB: true }, 'matmul:reg:f32:4x4:wg8x4:s1out:bT:e5qwv15u5f'],
    ];
    for (const [key, want] of keys) expect(matmulKernel(key).key).toBe(want);
  });
});

/** Mean squared error of a tanh MLP (Linear layers as in packages/models: x Wᵀ + b). */
function mlpLoss(ps: Tensor[][], x: Tensor, y: Tensor): Tensor {
  let h = x;
  ps.forEach(([w, b], l) => {
    const lin = ag.add(ag.matmul(h, w, { transB: true }), b);
    h = l < ps.length - 1 ? ag.tanh(lin) : lin;
  });
  return ag.mean(ag.square(ag.sub(h, y)));
}
