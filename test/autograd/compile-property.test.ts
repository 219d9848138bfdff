/**
 * @file Property: a random elementwise program (≤ 12 steps over ≤ 6 broadcasting inputs, optionally reduced) gives
 * the same values compiled (a replay on fresh inputs), eager with fusion off, and in float64 on the host.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as raw from '@metagrad/tensor/raw';
import type { Tensor } from '@metagrad/tensor';
import { compile } from '@metagrad/autograd';
import { useDevice, withFusion } from '../helpers/device';

const device = useDevice();

type Step =
  | { k: 'unary'; op: 'tanh' | 'sigmoid' | 'neg' | 'sin' | 'square' | 'relu' | 'abs' | 'exp'; a: number }
  | { k: 'binary'; op: 'add' | 'sub' | 'mul' | 'maximum' | 'minimum'; a: number; b: number }
  | { k: 'scalar'; op: 'add' | 'mul'; a: number; s: number };

const UNARY: Record<string, (x: number) => number> = {
  tanh: Math.tanh,
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  neg: (x) => -x,
  sin: Math.sin,
  square: (x) => x * x,
  relu: (x) => Math.max(x, 0),
  abs: Math.abs,
  exp: (x) => Math.exp(Math.tanh(x)), // bounded: exp(tanh x)
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
    op: fc.constantFrom('tanh', 'sigmoid', 'neg', 'sin', 'square', 'relu', 'abs', 'exp') as fc.Arbitrary<'tanh'>,
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
    op: fc.constantFrom('add', 'mul') as fc.Arbitrary<'add'>,
    a: fc.nat(),
    s: fc.double({ min: -2, max: 2, noNaN: true }),
  }),
);

const programArb = fc
  .record({
    base: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
    ones: fc.array(fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }), { minLength: 1, maxLength: 6 }),
    steps: fc.array(stepArb, { minLength: 1, maxLength: 12 }),
    reduce: fc.constantFrom('none', 'sum', 'mean-last'),
  })
  .map((p) => ({ ...p, shapes: p.ones.map((o) => p.base.map((d, i) => (o[i] ? 1 : d))) }));
type Program = typeof programArb extends fc.Arbitrary<infer P> ? P : never;

const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

function data(n: number, seed: number): Float32Array {
  let s = seed * 2654435761 + 7;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s / 2 ** 32) * 3 - 1.5;
  });
}

function runTensors(p: Program, ins: Tensor[]): Tensor {
  const vals: Tensor[] = [...ins];
  for (const st of p.steps) {
    const a = vals[st.a % vals.length];
    if (st.k === 'unary') vals.push(st.op === 'exp' ? raw.unary('exp', raw.unary('tanh', a)) : raw.unary(st.op, a));
    else if (st.k === 'binary') vals.push(raw.binary(st.op, a, vals[st.b % vals.length]));
    else vals.push(raw.binaryScalar(st.op, a, st.s, true));
  }
  let out = vals[vals.length - 1];
  if (p.reduce === 'sum') out = raw.sum(out);
  else if (p.reduce === 'mean-last') out = raw.mean(out, -1);
  return out;
}

/** float64 reference with numpy broadcasting, on the same inputs. */
function runHost(p: Program, inputs: Float32Array[]): { shape: number[]; values: number[] } {
  type V = { shape: number[]; values: number[] };
  const bshape = (a: number[], b: number[]) => {
    const n = Math.max(a.length, b.length);
    const pa = [...Array(n - a.length).fill(1), ...a];
    const pb = [...Array(n - b.length).fill(1), ...b];
    return pa.map((d, i) => Math.max(d, pb[i]));
  };
  const at = (v: V, shape: number[], flat: number) => {
    const pad = [...Array(shape.length - v.shape.length).fill(1), ...v.shape];
    let idx = 0;
    let rem = flat;
    const coords = shape.map(() => 0);
    for (let i = shape.length - 1; i >= 0; i--) {
      coords[i] = rem % shape[i];
      rem = Math.floor(rem / shape[i]);
    }
    for (let i = 0; i < shape.length; i++) idx = idx * pad[i] + (pad[i] === 1 ? 0 : coords[i]);
    return v.values[idx];
  };
  const vals: V[] = inputs.map((x, i) => ({ shape: p.shapes[i], values: Array.from(x) }));
  for (const st of p.steps) {
    const a = vals[st.a % vals.length];
    if (st.k === 'unary') vals.push({ shape: a.shape, values: a.values.map(UNARY[st.op]) });
    else if (st.k === 'scalar') vals.push({ shape: a.shape, values: a.values.map((x) => (st.op === 'add' ? x + st.s : x * st.s)) });
    else {
      const b = vals[st.b % vals.length];
      const shape = bshape(a.shape, b.shape);
      vals.push({
        shape,
        values: Array.from({ length: size(shape) }, (_, i) => BINARY[st.op](at(a, shape, i), at(b, shape, i))),
      });
    }
  }
  const out = vals[vals.length - 1];
  if (p.reduce === 'sum') return { shape: [], values: [out.values.reduce((x, y) => x + y, 0)] };
  if (p.reduce === 'mean-last') {
    const last = out.shape[out.shape.length - 1];
    const rows = out.values.length / last;
    return {
      shape: out.shape.slice(0, -1),
      values: Array.from({ length: rows }, (_, r) => out.values.slice(r * last, (r + 1) * last).reduce((x, y) => x + y, 0) / last),
    };
  }
  return out;
}

describe('compile (property)', () => {
  it('random elementwise programs: compiled replay == eager (fusion off) == float64 reference', async () => {
    await fc.assert(
      fc.asyncProperty(programArb, async (p) => {
        const d = device();
        const step = compile((...ins: Tensor[]) => runTensors(p, ins));
        for (let call = 0; call < 4; call++) {
          const host = p.shapes.map((s, i) => data(size(s), call * 31 + i));
          const ins = p.shapes.map((s, i) => raw.tensor(host[i], s, 'f32', d));
          const got = (await (await step(...ins)).toArray()) as Float32Array;
          const eager = withFusion(d, false, () => raw.tidy(() => runTensors(p, ins)));
          const want = (await eager.toArray()) as Float32Array;
          const ref = runHost(p, host);
          expect(got.length).toBe(ref.values.length);
          got.forEach((v, i) => {
            const tol = 1e-5 * Math.max(1, Math.abs(ref.values[i])) * (p.reduce === 'none' ? 1 : 8);
            expect(Math.abs(v - want[i]), `compiled vs eager at ${i}`).toBeLessThanOrEqual(tol);
            expect(Math.abs(v - ref.values[i]), `compiled vs float64 at ${i}`).toBeLessThanOrEqual(tol * 10);
          });
          raw.dispose([ins, eager]);
        }
        expect(step.stats().replays).toBe(1);
        step.dispose();
      }),
      { numRuns: 30, seed: 15 },
    );
  });
});
