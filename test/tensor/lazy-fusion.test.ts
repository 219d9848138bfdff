/** @file Lazy elementwise fusion (METAGRAD_FUSION): fused == unfused == float64, dispatch counts, memory, hazards. */
import { describe, it, expect, afterEach, vi } from 'vitest';
import fc from 'fast-check';
import * as raw from '@metagrad/tensor/raw';
import { setFusion, tensor, type Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { SGD } from '@metagrad/models';
import { useDevice, withFusion } from '../helpers/device';

const device = useDevice();
afterEach(() => setFusion(device(), undefined));

/** Runs `fn` with fusion on or off for this file's device only. */
const fused = <T>(on: boolean, fn: () => T): T => withFusion(device(), on, fn);

// ---------------------------------------------------------------- float64 reference with broadcasting

interface Ref {
  shape: number[];
  data: Float64Array;
}
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  return Array.from({ length: r }, (_, i) => {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    return x === 1 ? y : x;
  });
}
function at(v: Ref, out: readonly number[], idx: number): number {
  let off = 0;
  let stride = 1;
  let rem = idx;
  const coords: number[] = [];
  for (let d = out.length - 1; d >= 0; d--) {
    coords[d] = rem % out[d];
    rem = Math.floor(rem / out[d]);
  }
  for (let d = v.shape.length - 1; d >= 0; d--) {
    const c = coords[out.length - v.shape.length + d];
    off += (v.shape[d] === 1 ? 0 : c) * stride;
    stride *= v.shape[d];
  }
  return v.data[off];
}
function refMap(args: Ref[], f: (...x: number[]) => number): Ref {
  const shape = args.map((a) => a.shape).reduce(broadcastShape);
  const data = new Float64Array(size(shape));
  for (let i = 0; i < data.length; i++) data[i] = f(...args.map((a) => at(a, shape, i)));
  return { shape, data };
}

// ---------------------------------------------------------------- random elementwise programs

type Step =
  | { k: 'unary'; op: 'tanh' | 'sigmoid' | 'neg' | 'sin' | 'cos' | 'square' | 'relu' | 'abs'; a: number }
  | { k: 'binary'; op: 'add' | 'sub' | 'mul' | 'maximum' | 'minimum'; a: number; b: number }
  | { k: 'scalar'; op: 'add' | 'mul' | 'sub'; a: number; s: number; first: boolean }
  | { k: 'axpby'; a: number; b: number; alpha: number; beta: number };

const UNARY: Record<string, (x: number) => number> = {
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  neg: (x) => -x,
  sin: Math.sin,
  cos: Math.cos,
  square: (x) => x * x,
  relu: (x) => Math.max(x, 0),
  abs: Math.abs,
};
const BINARY: Record<string, (x: number, y: number) => number> = {
  add: (x, y) => x + y,
  sub: (x, y) => x - y,
  mul: (x, y) => x * y,
  maximum: Math.max,
  minimum: Math.min,
};

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    k: fc.constant('unary' as const),
    op: fc.constantFrom('tanh', 'sigmoid', 'neg', 'sin', 'cos', 'square', 'relu', 'abs') as fc.Arbitrary<'tanh'>,
    a: fc.nat(),
  }),
  fc.record({
    k: fc.constant('binary' as const),
    op: fc.constantFrom('add', 'sub', 'mul', 'maximum', 'minimum') as fc.Arbitrary<'add'>,
    a: fc.nat(),
    b: fc.nat(),
  }),
  fc.record({
    k: fc.constant('scalar' as const),
    op: fc.constantFrom('add', 'mul', 'sub') as fc.Arbitrary<'add'>,
    a: fc.nat(),
    s: fc.double({ min: -2, max: 2, noNaN: true }),
    first: fc.boolean(),
  }),
  fc.record({
    k: fc.constant('axpby' as const),
    a: fc.nat(),
    b: fc.nat(),
    alpha: fc.double({ min: -2, max: 2, noNaN: true }),
    beta: fc.double({ min: -2, max: 2, noNaN: true }),
  }),
);

/** A base shape, 1–4 inputs broadcasting to it (dims set to 1, leading dims dropped), ≤ 8 steps, kept handles. */
const programArb = fc
  .record({
    base: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 }),
    inputs: fc.array(
      fc.record({
        ones: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
        drop: fc.nat({ max: 2 }),
        seed: fc.nat(),
      }),
      { minLength: 1, maxLength: 4 },
    ),
    steps: fc.array(stepArb, { minLength: 1, maxLength: 8 }),
    keep: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
  })
  .map((p) => ({
    ...p,
    shapes: p.inputs.map((inp) => p.base.map((d, i) => (inp.ones[i] ? 1 : d)).slice(Math.min(inp.drop, p.base.length - 1))),
  }));
type Program = typeof programArb extends fc.Arbitrary<infer P> ? P : never;

function inputData(n: number, seed: number): Float32Array {
  let s = seed * 2654435761 + 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  });
}

/** Runs the program on the GPU; returns the final value and the kept intermediates, read back. */
async function runGpu(p: Program, on: boolean, marks: number[] = []): Promise<Float32Array[]> {
  const d = device();
  const start = d.memory();
  d.resetPeak();
  const mark = () =>
    marks.push(d.memory().bytesInUse - start.bytesInUse, d.memory().liveTensors - start.liveTensors, d.memory().peakBytesInUse - start.bytesInUse);
  const { values, kept } = fused(on, () => {
    const ins = p.shapes.map((s, i) => tensor(inputData(size(s), p.inputs[i].seed), s, 'f32', d));
    const vals: Tensor[] = [...ins];
    const made: Tensor[] = [];
    for (const st of p.steps) {
      const a = vals[st.a % vals.length];
      let y: Tensor;
      if (st.k === 'unary') y = raw.unary(st.op, a);
      else if (st.k === 'binary') y = raw.binary(st.op, a, vals[st.b % vals.length]);
      else if (st.k === 'scalar') y = raw.binaryScalar(st.op, a, st.s, st.first);
      else {
        const b = vals[st.b % vals.length];
        y = a.shape.join() === b.shape.join() ? raw.axpby(st.alpha, a, st.beta, b) : raw.add(a, b);
      }
      vals.push(y);
      made.push(y);
      mark();
    }
    // Inputs die before realisation: the expression must keep their buffers.
    for (const t of ins) t.dispose();
    const keep = made.filter((_t, i) => i === made.length - 1 || p.keep[i]);
    for (const t of made) if (!keep.includes(t)) t.dispose();
    mark();
    return { values: keep, kept: keep };
  });
  void kept;
  // The final value first: kept intermediates of its size are then written as extra outputs of its kernel.
  const out: Float32Array[] = [];
  for (const t of [...values].reverse()) out.unshift((await t.toArray()) as Float32Array);
  mark();
  for (const t of values) t.dispose();
  mark();
  return out;
}

function runRef(p: Program): Ref[] {
  const vals: Ref[] = p.shapes.map((s, i) => ({
    shape: s,
    data: Float64Array.from(inputData(size(s), p.inputs[i].seed)),
  }));
  const made: Ref[] = [];
  const f32 = Math.fround;
  for (const st of p.steps) {
    const a = vals[st.a % vals.length];
    let y: Ref;
    if (st.k === 'unary') y = refMap([a], UNARY[st.op]);
    else if (st.k === 'binary') y = refMap([a, vals[st.b % vals.length]], BINARY[st.op]);
    else if (st.k === 'scalar') y = refMap([a], (x) => (st.first ? BINARY[st.op](f32(st.s), x) : BINARY[st.op](x, f32(st.s))));
    else {
      const b = vals[st.b % vals.length];
      y = a.shape.join() === b.shape.join() ? refMap([a, b], (x, z) => f32(st.alpha) * x + f32(st.beta) * z) : refMap([a, b], (x, z) => x + z);
    }
    vals.push(y);
    made.push(y);
  }
  return made.filter((_, i) => i === made.length - 1 || p.keep[i]);
}

describe('lazy elementwise fusion', () => {
  it('random elementwise DAGs with broadcasting: fused == unfused (1e-6 relative), both match float64, memory figures equal', async () => {
    await fc.assert(
      fc.asyncProperty(programArb, async (p) => {
        const [fusedMarks, eagerMarks]: number[][] = [[], []];
        const fused = await runGpu(p, true, fusedMarks);
        const eager = await runGpu(p, false, eagerMarks);
        expect(fusedMarks).toEqual(eagerMarks); // bytesInUse, liveTensors and peak after every step, as eagerly
        const ref = runRef(p);
        expect(fused.length).toBe(ref.length);
        fused.forEach((f, j) => {
          const e = eager[j];
          const r = ref[j].data;
          expect(f.length).toBe(r.length);
          const scale = 1 + r.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          for (let i = 0; i < f.length; i++) {
            expect(Math.abs(f[i] - e[i])).toBeLessThanOrEqual(1e-6 * Math.max(Math.abs(f[i]), Math.abs(e[i])) + 1e-6);
            expect(Math.abs(f[i] - r[i])).toBeLessThanOrEqual(1e-5 * scale);
          }
        });
      }),
      { numRuns: 60 },
    );
  });

  it('the 100-add chain is one dispatch with fusion on, 100 with it off', async () => {
    for (const on of [true, false]) {
      const d = device();
      const { y, count } = fused(on, () => {
        const x = tensor(inputData(1024, 7), [1024], 'f32', d);
        const before = d.counters.dispatches;
        let acc = raw.add(x, x);
        for (let i = 1; i < 100; i++) {
          const next = raw.add(acc, x);
          acc.dispose();
          acc = next;
        }
        x.dispose();
        void acc.buffer; // realise
        return { y: acc, count: d.counters.dispatches - before };
      });
      expect(count).toBe(on ? 1 : 100);
      const got = await y.toArray();
      const x = inputData(1024, 7);
      for (let i = 0; i < 1024; i++) expect(Math.abs(got[i] - 101 * x[i])).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(101 * x[i])));
      y.dispose();
    }
  });

  it('disposing an input before realisation keeps the result right; memory figures equal eager and return to baseline', async () => {
    const d = device();
    const base = d.memory();
    const trace = (on: boolean) =>
      fused(on, () => {
        const start = d.memory();
        const marks: [number, number][] = [];
        const mark = () => marks.push([d.memory().bytesInUse - start.bytesInUse, d.memory().liveTensors - start.liveTensors]);
        d.resetPeak();
        const a = tensor([1, 2, 3, 4], [4], 'f32', d);
        const b = tensor([10, 20, 30, 40], [4], 'f32', d);
        const s = raw.mul(a, b);
        mark();
        const scaled = raw.mulScalar(s, 0.01);
        const t = raw.tanh(scaled);
        scaled.dispose();
        mark();
        a.dispose();
        b.dispose();
        mark();
        const y = raw.add(t, s);
        s.dispose();
        t.dispose();
        mark();
        return { y, marks, peak: d.memory().peakBytesInUse - start.bytesInUse };
      });
    const lazy = trace(true);
    const eager = trace(false);
    expect(lazy.marks).toEqual(eager.marks);
    expect(lazy.peak).toBe(eager.peak);
    const [gl, ge] = [await lazy.y.toArray(), await eager.y.toArray()];
    const want = [10, 40, 90, 160].map((v) => Math.tanh(v * 0.01) + v);
    for (let i = 0; i < 4; i++) {
      expect(Math.abs(gl[i] - want[i])).toBeLessThanOrEqual(1e-6 * want[i]);
      expect(Math.abs(gl[i] - ge[i])).toBeLessThanOrEqual(1e-6 * want[i]);
    }
    lazy.y.dispose();
    eager.y.dispose();
    expect(d.memory().bytesInUse).toBe(base.bytesInUse);
    expect(d.memory().liveTensors).toBe(base.liveTensors);
  });

  it('an inner value with a live handle is written as an extra output of the same kernel', async () => {
    const d = device();
    const { t, y, count } = fused(true, () => {
      const x = tensor([-1, 0.5, 2], [3], 'f32', d);
      const t = raw.tanh(x);
      const tx = raw.mul(t, x);
      const y = raw.addScalar(tx, 1);
      tx.dispose();
      x.dispose();
      const before = d.counters.dispatches;
      void y.buffer;
      void t.buffer; // already written by y's kernel
      return { t, y, count: d.counters.dispatches - before };
    });
    expect(count).toBe(1);
    const [gt, gy] = [await t.toArray(), await y.toArray()];
    [-1, 0.5, 2].forEach((v, i) => {
      expect(Math.abs(gt[i] - Math.tanh(v))).toBeLessThanOrEqual(1e-6);
      expect(Math.abs(gy[i] - (Math.tanh(v) * v + 1))).toBeLessThanOrEqual(1e-6 * 3);
    });
    t.dispose();
    y.dispose();
  });

  it('a value dropped before realisation is never computed and frees its leaves', () => {
    const d = device();
    const base = d.memory();
    fused(true, () => {
      const a = tensor([1, 2, 3], [3], 'f32', d);
      const before = d.counters.dispatches;
      const negA = raw.neg(a);
      const y = raw.exp(negA);
      negA.dispose();
      a.dispose();
      y.dispose();
      expect(d.counters.dispatches).toBe(before);
    });
    expect(d.memory().bytesInUse).toBe(base.bytesInUse);
    expect(d.memory().liveTensors).toBe(base.liveTensors);
  });

  it('gradients (first and second order) with fusion on equal fusion off', async () => {
    const run = (on: boolean) =>
      fused(on, () =>
        raw.tidy(() => {
          const d = device();
          const x = ag.requiresGrad(tensor([-1.5, -0.3, 0.2, 0.9, 2], [5], 'f32', d));
          const w = ag.requiresGrad(tensor([0.5, -2, 1, 3, -0.7], [5], 'f32', d));
          const y = ag.sum(ag.addScalar(ag.mul(ag.mul(ag.tanh(x), x), ag.sigmoid(w)), 1));
          const [gx, gw] = ag.grad(y, [x, w], { createGraph: true });
          const [ggx] = ag.grad(ag.sum(ag.mul(gx, gx)), [x]);
          return raw.keep(
            raw.concat(
              [gx, gw, ggx].map((t) => ag.detach(t)),
              0,
            ),
          );
        }),
      );
    const [on, off] = [run(true), run(false)];
    const [a, b] = [await on.toArray(), await off.toArray()];
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(1e-6 * Math.max(Math.abs(a[i]), 1));
    on.dispose();
    off.dispose();
  });

  it('an in-place write into a storage a pending expression reads realises the expression first', async () => {
    const d = device();
    const { y, p } = fused(true, () => {
      const p = tensor([1, 2, 3, 4], [4], 'f32', d);
      const y = raw.mulScalar(raw.add(p, p), 3); // pending, reads p
      d.write(p.bufferForInPlaceWrite(), new Float32Array([100, 100, 100, 100])); // the optimiser's path
      return { y, p };
    });
    expect(Array.from(await y.toArray())).toEqual([6, 12, 18, 24]);
    expect(Array.from(await p.toArray())).toEqual([100, 100, 100, 100]);
    y.dispose();
    p.dispose();
  });

  it('an in-place SGD step after lazy reads of the parameter: the reads see the old values, the step the right gradient', async () => {
    const d = device();
    const { p, y, opt } = fused(true, () => {
      const p = tensor([1, 2, 3], [3], 'f32', d);
      const opt = new SGD({ p }, { lr: 0.5 });
      const y = raw.mulScalar(p, 3); // pending, reads p
      const g = raw.addScalar(p, 1); // pending gradient that reads p too
      opt.step({ p: g });
      g.dispose();
      return { p, y, opt };
    });
    expect(Array.from(await y.toArray())).toEqual([3, 6, 9]);
    expect(Array.from(await p.toArray())).toEqual([0, 0.5, 1]); // p − 0.5 (p + 1)
    opt.dispose();
    raw.dispose([p, y]);
  });

  it('cuts: more leaves than storage bindings, and a reshaped pending value, still compute the right numbers', async () => {
    const d = device();
    const n = d.limits.maxStorageBuffersPerShaderStage + 3;
    const y = fused(true, () =>
      raw.tidy(() => {
        let acc = tensor([0, 0], [2], 'f32', d);
        for (let i = 1; i <= n; i++) acc = raw.add(acc, tensor([i, -i], [2], 'f32', d));
        const sq = raw.square(acc).view([2, 1]); // a view of a pending value with another shape
        return raw.add(sq, tensor([1, 2], [1, 2], 'f32', d));
      }),
    );
    const s = (n * (n + 1)) / 2;
    expect(Array.from(await y.toArray())).toEqual([s * s + 1, s * s + 2, s * s + 1, s * s + 2]);
    y.dispose();
  });

  it('validation still throws at the call: a broadcast folding past the kernel rank is a ShapeError, nothing leaks', () => {
    const d = device();
    fused(true, () => {
      const a = raw.zeros([2, 1, 2, 1, 2, 1, 2, 1, 2], 'f32', d);
      const b = raw.zeros([1, 2, 1, 2, 1, 2, 1, 2, 1], 'f32', d);
      const before = d.memory();
      expect(() => raw.add(a, b)).toThrow(raw.ShapeError);
      expect(() => raw.reluGrad(a, b)).toThrow(raw.ShapeError);
      expect(d.memory().bytesInUse).toBe(before.bytesInUse);
      expect(d.memory().liveTensors).toBe(before.liveTensors);
      raw.dispose([a, b]);
    });
  });

  it('a dispatch that fails at realisation throws there, keeps the value pending and leaks nothing', async () => {
    const d = device();
    const base = d.memory();
    const x = tensor([1, 2, 3], [3], 'f32', d);
    const y = fused(true, () => {
      const e = raw.exp(x);
      const out = raw.mulScalar(e, 2);
      e.dispose();
      return out;
    });
    const spy = vi.spyOn(d, 'dispatch').mockImplementation(() => {
      throw new raw.KernelError('injected failure', 'test');
    });
    try {
      expect(() => y.buffer).toThrow(/injected/);
    } finally {
      spy.mockRestore();
    }
    expect(y.storage.pending).not.toBeNull();
    const got = await y.toArray(); // realises now
    [1, 2, 3].forEach((v, i) => expect(Math.abs(got[i] - 2 * Math.exp(v))).toBeLessThanOrEqual(1e-6 * 2 * Math.exp(v)));
    raw.dispose([x, y]);
    expect(d.memory().bytesInUse).toBe(base.bytesInUse);
    expect(d.memory().liveTensors).toBe(base.liveTensors);
    expect(d.memory().bytesPooled).toBe(d.memory().bytesAllocated - base.bytesAllocated + base.bytesPooled);
  });

  it('with fusion off, elementwise ops dispatch at once, as before', () => {
    const d = device();
    fused(false, () => {
      const a = tensor([1, 2], [2], 'f32', d);
      const before = d.counters.dispatches;
      const y = raw.tanh(raw.addScalar(a, 1));
      expect(d.counters.dispatches - before).toBe(2);
      expect(y.storage.pending).toBeNull();
      a.dispose();
      y.dispose();
    });
  });
});
