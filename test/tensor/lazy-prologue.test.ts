/** @file Reduction prologues (lazy fusion): a reduction of a pending input evaluates its expression in the first pass. */
import { describe, it, expect, afterEach } from 'vitest';
import * as raw from '@metagrad/tensor/raw';
import { setFusion, tensor, type Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { useDevice, withFusion } from '../helpers/device';
import { data, expectClose } from '../helpers/lazy';

const device = useDevice();
afterEach(() => setFusion(device(), undefined));

const fused = <T>(on: boolean, fn: () => T): T => withFusion(device(), on, fn);
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

type Red = 'sum' | 'mean' | 'max' | 'min' | 'logsumexp';
const REDUCE: Record<Red, (x: Tensor, axes?: number | number[], keepDims?: boolean) => Tensor> = {
  sum: raw.sum,
  mean: raw.mean,
  max: raw.max,
  min: raw.min,
  logsumexp: raw.logsumexp,
};

/** (a − b)² · c + tanh(a) / 2 − 0.25 with b and c broadcast (uniform scalars too): 7 elementwise ops eagerly. */
function program(a: Tensor, b: Tensor, c: Tensor): Tensor {
  return raw.addScalar(raw.add(raw.mul(raw.square(raw.sub(a, b)), c), raw.mulScalar(raw.tanh(a), 0.5)), -0.25);
}
const PROGRAM_OPS = 7;

describe('reduction prologues', () => {
  const cases: { shape: number[]; b: number[]; c: number[]; axes: number[] | undefined; keep: boolean }[] = [
    { shape: [37], b: [37], c: [1], axes: undefined, keep: false },
    { shape: [5000], b: [1], c: [5000], axes: [0], keep: true }, // long row: several passes
    { shape: [6, 7], b: [1, 7], c: [6, 1], axes: [1], keep: false }, // strided leaves, row layout
    { shape: [6, 7], b: [7], c: [1], axes: [0], keep: true }, // col layout
    { shape: [3, 5, 8], b: [5, 1], c: [8], axes: [1], keep: false }, // col4 layout, strided
    { shape: [3, 5, 8], b: [3, 5, 8], c: [1], axes: [0, 2], keep: true }, // two reduced blocks
    { shape: [4, 3000], b: [4, 1], c: [3000], axes: [1], keep: false }, // split rows, strided
    { shape: [2, 3, 4], b: [1], c: [1], axes: [], keep: false }, // nothing reduced: one copying pass
    { shape: [1, 9, 1], b: [9, 1], c: [1, 1, 1], axes: [1], keep: true },
  ];
  for (const op of ['sum', 'mean', 'max', 'min', 'logsumexp'] as Red[]) {
    it(`${op}: fused prologue == eager over axes, keepDims and broadcast leaves; dispatches are the reduction's only`, async () => {
      const d = device();
      for (const [i, cs] of cases.entries()) {
        const run = (on: boolean) =>
          fused(on, () => {
            const a = tensor(data(size(cs.shape), i + 1), cs.shape, 'f32', d);
            const b = tensor(data(size(cs.b), i + 11), cs.b, 'f32', d);
            const c = tensor(data(size(cs.c), i + 21, 0.5, 2), cs.c, 'f32', d);
            const before = d.counters.dispatches;
            const x = program(a, b, c);
            const y = REDUCE[op](x, cs.axes, cs.keep);
            const count = d.counters.dispatches - before;
            raw.dispose([a, b, c, x]);
            return { y, count };
          });
        const on = run(true);
        const off = run(false);
        expect(on.y.shape, `${op} case ${i}`).toEqual(off.y.shape);
        expect(on.count, `${op} case ${i}`).toBe(off.count - PROGRAM_OPS);
        expectClose(await on.y.toArray(), await off.y.toArray(), `${op} case ${i}`);
        raw.dispose([on.y, off.y]);
      }
    });
  }

  it('softmax and logSoftmax of a pending input: one dispatch per call, == eager, over row/col/col4 and the split path', async () => {
    const d = device();
    const shapes: [number[], number, number[]][] = [
      [[4, 9], 1, [9]],
      [[4, 9], 0, [4, 1]],
      [[3, 6, 8], 1, [1, 8]],
      [[2, 20000], 1, [1]],
    ];
    for (const [shape, axis, bShape] of shapes) {
      for (const log of [false, true]) {
        const run = (on: boolean) =>
          fused(on, () => {
            const a = tensor(data(size(shape), 3, -3, 3), shape, 'f32', d);
            const b = tensor(data(size(bShape), 4), bShape, 'f32', d);
            const before = d.counters.dispatches;
            const x = raw.mulScalar(raw.mul(raw.sub(a, b), b), 1.5);
            const y = log ? raw.logSoftmax(x, axis) : raw.softmax(x, axis);
            void y.buffer;
            const count = d.counters.dispatches - before;
            raw.dispose([a, b, x]);
            return { y, count };
          });
        const on = run(true);
        const off = run(false);
        const what = `${log ? 'logSoftmax' : 'softmax'} [${shape}] axis ${axis}`;
        // The split path (long rows, few of them) is logsumexp, then x − lse (and exp): those fuse too.
        const split = shape[1] === 20000;
        expect(on.count, what).toBe(off.count - 3 - (split && !log ? 1 : 0));
        expectClose(await on.y.toArray(), await off.y.toArray(), what);
        raw.dispose([on.y, off.y]);
      }
    }
  });

  it('dot of pending operands is one prologue mul(x, y): the reduction passes only, == eager', async () => {
    const d = device();
    for (const n of [7, 1000, 20000]) {
      const run = (on: boolean) =>
        fused(on, () => {
          const a = tensor(data(n, 5), [n], 'f32', d);
          const b = tensor(data(n, 6), [n], 'f32', d);
          const before = d.counters.dispatches;
          const x = raw.sub(a, b); // pending
          const both = raw.dot(x, raw.tanh(b)); // both pending
          const one = raw.dot(a, x); // one pending, one realised
          const self = raw.dot(x, x); // the same pending operand twice
          const count = d.counters.dispatches - before;
          const t = raw.tanh(b);
          const plain = raw.dot(a, b); // neither pending: the product kernel, as eagerly
          const ys = [both, one, self, plain];
          raw.dispose([a, b, x, t]);
          return { ys, count };
        });
      const on = run(true);
      const off = run(false);
      expect(on.count, `n ${n}`).toBe(off.count - 2);
      for (let k = 0; k < on.ys.length; k++) expectClose(await on.ys[k].toArray(), await off.ys[k].toArray(), `dot ${k} n ${n}`);
      raw.dispose([...on.ys, ...off.ys]);
    }
  });

  it('a pending input disposed after the reduction is never computed; memory figures equal eager at every point', async () => {
    const d = device();
    const trace = (on: boolean) =>
      fused(on, () => {
        const start = d.memory();
        d.resetPeak();
        const marks: number[][] = [];
        const mark = () => {
          const m = d.memory();
          marks.push([m.bytesInUse - start.bytesInUse, m.liveTensors - start.liveTensors, m.peakBytesInUse - start.bytesInUse]);
        };
        const before = d.counters.dispatches;
        const x = tensor(data(3000, 7), [30, 100], 'f32', d);
        const y = tensor(data(100, 8), [100], 'f32', d);
        const diff = raw.sub(x, y);
        mark();
        const sq = raw.square(diff);
        diff.dispose();
        mark();
        const m = raw.mean(sq, 1);
        mark();
        const s = raw.sum(sq);
        mark();
        sq.dispose();
        x.dispose();
        mark();
        const count = d.counters.dispatches - before;
        return { ys: [m, s, y], marks, count };
      });
    const on = trace(true);
    const off = trace(false);
    expect(on.marks).toEqual(off.marks);
    expect(on.count).toBe(3); // mean's pass and sum's two: (x − y)² was never computed on its own
    expect(off.count).toBe(2 + 1 + 2);
    for (let k = 0; k < 2; k++) expectClose(await on.ys[k].toArray(), await off.ys[k].toArray(), `y${k}`);
    const base = d.memory();
    raw.dispose([...on.ys, ...off.ys]);
    expect(base.bytesInUse - d.memory().bytesInUse).toBe(2 * (30 + 1 + 100) * 4);
  });

  it('a pending input still held is realisable later with the right values; a second handle makes the first pass write it', async () => {
    const d = device();
    const { sq, s, late, extra, alias } = fused(true, () => {
      const x = tensor([1, -2, 3, -4, 5], [5], 'f32', d);
      const sq = raw.square(raw.addScalar(x, 1));
      let before = d.counters.dispatches;
      const s = raw.sum(sq);
      expect(d.counters.dispatches - before).toBe(1);
      expect(sq.storage.pending).not.toBeNull(); // only the reduction's handle: left pending
      before = d.counters.dispatches;
      void sq.buffer; // realised now, from the retained leaves
      const late = d.counters.dispatches - before;

      // An inner value with a handle of its own and a second handle on the input (as an autograd saved tensor is).
      const t = raw.tanh(x);
      const y = raw.mul(t, x);
      const alias = y.view([5, 1]);
      before = d.counters.dispatches;
      const m = raw.max(y);
      const extra = {
        count: d.counters.dispatches - before,
        t,
        y,
        m,
        pendingAfter: [t.storage.pending, y.storage.pending],
      };
      x.dispose();
      return { sq, s, late, extra, alias };
    });
    expect(late).toBe(1);
    const want = [1, -2, 3, -4, 5].map((v) => (v + 1) ** 2);
    expect(Array.from(await sq.toArray())).toEqual(want);
    expect((await s.toArray())[0]).toBe(want.reduce((a, b) => a + b));
    expect(extra.count).toBe(1);
    expect(extra.pendingAfter).toEqual([null, null]); // both written by max's first pass
    const before = d.counters.dispatches;
    const [gt, gy, gm] = [await extra.t.toArray(), await extra.y.toArray(), await extra.m.toArray()];
    expect(d.counters.dispatches).toBe(before);
    [1, -2, 3, -4, 5].forEach((v, i) => {
      expect(Math.abs(gt[i] - Math.tanh(v))).toBeLessThanOrEqual(1e-6);
      expect(Math.abs(gy[i] - Math.tanh(v) * v)).toBeLessThanOrEqual(1e-6 * 5);
    });
    expect(gm[0]).toBe(Math.max(...gy));
    raw.dispose([sq, s, extra.t, extra.y, extra.m, alias]);
  });

  it('first and second derivatives of mean((f(x) − y)²) with fusion on (gradcheck, gradgradcheck), and equal to fusion off', async () => {
    const d = device();
    const f = {
      gpu: (x: Tensor, w: Tensor, y: Tensor) => ag.mean(ag.square(ag.sub(ag.mul(ag.tanh(ag.mul(x, w)), w), y))),
      ref: (
        x: { shape: readonly number[]; data: Float64Array },
        w: { shape: readonly number[]; data: Float64Array },
        y: { shape: readonly number[]; data: Float64Array },
      ) => {
        const n = x.data.length;
        const cols = w.data.length;
        let acc = 0;
        for (let i = 0; i < n; i++) {
          const wv = w.data[i % cols];
          const r = Math.tanh(x.data[i] * wv) * wv - y.data[i];
          acc += r * r;
        }
        return { shape: [], data: Float64Array.from([acc / n]) };
      },
    };
    const inputs = [
      { shape: [3, 4], data: Float64Array.from(data(12, 9)) },
      { shape: [4], data: Float64Array.from(data(4, 10, 0.5, 1.5)) },
      { shape: [3, 4], data: Float64Array.from(data(12, 11)) },
    ];
    await withFusion(d, true, async () => {
      const first = await ag.gradcheck(f, inputs, { raise: false, device: d });
      expect(first.failures).toEqual([]);
      const second = await ag.gradgradcheck(f, inputs, { raise: false, device: d, wrt: [0, 1] });
      expect(second.failures).toEqual([]);
    });
    const grads = (on: boolean) =>
      fused(on, () =>
        raw.tidy(() => {
          const [x, w, y] = inputs.map((v) => ag.requiresGrad(tensor(Float32Array.from(v.data), v.shape, 'f32', d)));
          const loss = f.gpu(x, w, y);
          const [gx, gw] = ag.grad(loss, [x, w], { createGraph: true });
          const [ggx] = ag.grad(ag.add(ag.sum(ag.mul(gx, gx)), ag.dot(gw, gw)), [x]);
          return raw.keep(
            raw.concat(
              [loss.view([1]), gx.view([12]), gw, ggx.view([12])].map((t) => ag.detach(t)),
              0,
            ),
          );
        }),
      );
    const on = grads(true);
    const off = grads(false);
    expectClose(await on.toArray(), await off.toArray(), 'loss and derivatives');
    raw.dispose([on, off]);
  });

  it('NaN and ±inf produced inside the prologue propagate as eagerly', async () => {
    const d = device();
    const vals = [0.5, 0, -1, 2, 3, 0, 1, 4]; // log gives −inf at 0 and NaN at −1
    for (const op of ['sum', 'max', 'min', 'logsumexp'] as Red[]) {
      for (const axes of [undefined, [1]]) {
        const run = (on: boolean) =>
          fused(on, () => {
            const a = tensor(vals, [2, 4], 'f32', d);
            const x = raw.log(raw.mulScalar(a, 2));
            const y = REDUCE[op](x, axes);
            raw.dispose([a, x]);
            return y;
          });
        const [on, off] = [run(true), run(false)];
        expectClose(await on.toArray(), await off.toArray(), `${op} ${axes}`);
        raw.dispose([on, off]);
      }
    }
  });

  it('at the binding limit there is no room for extra outputs: the live inner value stays pending and is right later', async () => {
    const d = device();
    const nLeaves = d.limits.maxStorageBuffersPerShaderStage - 1; // + the reduction's own output = the limit
    const { inner, s, want } = fused(true, () => {
      const leaves = Array.from({ length: nLeaves }, (_, i) => tensor([i, -i, 2 * i], [3], 'f32', d));
      const inner = raw.tanh(raw.add(leaves[0], leaves[1])); // a user handle of its own
      let acc = inner;
      for (let i = 2; i < nLeaves; i++) acc = raw.add(acc, leaves[i]);
      const before = d.counters.dispatches;
      const s = raw.sum(acc);
      expect(d.counters.dispatches - before).toBe(1);
      expect(inner.storage.pending).not.toBeNull();
      const want = [0, 1, 2].map((j) => {
        const t = Math.tanh([1, -1, 2][j]); // leaves 0 and 1: [0, 0, 0] + [1, −1, 2]
        let v = t;
        for (let i = 2; i < nLeaves; i++) v += [i, -i, 2 * i][j];
        return { t, v };
      });
      raw.dispose(leaves);
      return { inner, s, want };
    });
    const gi = await inner.toArray();
    want.forEach((w, j) => expect(Math.abs(gi[j] - w.t)).toBeLessThanOrEqual(1e-6));
    const total = want.reduce((a, w) => a + w.v, 0);
    expect(Math.abs((await s.toArray())[0] - total)).toBeLessThanOrEqual(1e-5 * Math.abs(total));
    raw.dispose([inner, s]);
  });
});
