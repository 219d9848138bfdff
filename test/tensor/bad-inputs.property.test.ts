/**
 * @file Property test (issue 14, "never silently wrong"): random good and bad inputs — wrong, ragged and
 * non-broadcastable shapes, unknown dtypes, fractional/negative/NaN integer arguments, out-of-range axes and
 * indices, operands on a second device — go to the public raw ops of @metagrad/tensor and some @metagrad/autograd ops and losses.
 * Each call must either return what the float64 reference returns (within f32 tolerance) or throw a named
 * metagrad error; never a wrong value, a raw TypeError/RangeError, or a tensor left allocated.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as raw from '@metagrad/tensor/raw';
import * as ag from '@metagrad/autograd';
import { createNodeDevice } from '@metagrad/tensor/node';
import {
  DeviceMismatchError,
  DisposedTensorError,
  DTypeError,
  InvalidArgumentError,
  mulberry32,
  ShapeError,
  sizeOf,
  type Device,
  type DType,
  type Tensor,
} from '@metagrad/tensor';
import * as ref from '../../packages/tensor/src/reference/index';
import type { RefTensor } from '../../packages/tensor/src/reference/index';

/** The errors a bad input may raise (IndexOutOfRangeError is an InvalidArgumentError). */
const NAMED_ERRORS = [ShapeError, DTypeError, InvalidArgumentError, DeviceMismatchError, DisposedTensorError] as const;

/** Runs per property (the file stays well under 20 s on llvmpipe); BAD_INPUT_RUNS=2000 fuzzes deeper by hand. */
const RUNS = Number(process.env.BAD_INPUT_RUNS ?? 120);

let main: Device;
let other: Device;
beforeAll(async () => {
  main = await createNodeDevice();
  other = await createNodeDevice();
  raw.setDefaultDevice(main);
});
afterAll(() => {
  main?.destroy();
  other?.destroy();
});

// ---------------------------------------------------------------- inputs

/** A tensor the case builds: its shape, dtype, data seed and device ('other' is the second device). */
interface TensorSpec {
  shape: number[];
  dtype: 'f32' | 'i32';
  seed: number;
  onOther: boolean;
}

interface Built {
  t: Tensor;
  r: RefTensor;
}

/** f32-exact values in [-2, 2) (or integers in [-3, 3] for i32) from a seed, uploaded to the chosen device. */
function build(spec: TensorSpec, made: Tensor[]): Built {
  const rnd = mulberry32(spec.seed);
  const n = sizeOf(spec.shape);
  const data = Float64Array.from({ length: n }, () => (spec.dtype === 'i32' ? Math.floor(rnd() * 7) - 3 : Math.fround(4 * rnd() - 2)));
  const t = raw.tensor(data, spec.shape, spec.dtype, spec.onOther ? other : main);
  made.push(t);
  return { t, r: { shape: [...spec.shape], data } };
}

const dim = fc.integer({ min: 0, max: 3 });
const goodShape = (maxRank = 3) => fc.array(fc.integer({ min: 1, max: 3 }), { maxLength: maxRank });
/** Integer-argument values a JS caller may pass by mistake. */
const badInt = fc.constantFrom<unknown>(1.5, -1, NaN, Infinity, -Infinity, '2', null);
/** Usually valid (in [min, max]), sometimes one of badInt. */
const intArg = (min: number, max: number) =>
  fc.oneof({ weight: 5, arbitrary: fc.integer({ min, max }) as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: badInt });
const badDType = fc.constantFrom('f64', 'float32', 'int64', 'F32', '', 'toString');
const dtypeArg = fc.oneof({ weight: 4, arbitrary: fc.constantFrom('f32', 'i32') as fc.Arbitrary<string> }, { weight: 1, arbitrary: badDType });
/** A shape, now and then with one bad dim (negative, fractional, NaN, a string) or not an array at all. */
const shapeArg = fc.oneof(
  { weight: 6, arbitrary: fc.array(dim, { maxLength: 3 }) as fc.Arbitrary<unknown> },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.array(dim, { minLength: 1, maxLength: 3 }), badInt, fc.nat())
      .map(([s, bad, at]) => s.map((d, i) => (i === at % s.length ? bad : d))),
  },
  { weight: 1, arbitrary: fc.constantFrom<unknown>(3, undefined, '2,2') },
);
const onOther = fc.oneof({ weight: 6, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
const seed = fc.nat();
const spec = (shape: fc.Arbitrary<number[]>, dtype: fc.Arbitrary<'f32' | 'i32'> = fc.constant('f32')): fc.Arbitrary<TensorSpec> =>
  fc.record({ shape, dtype, seed, onOther });

/** Shapes of two operands that usually broadcast (each dim taken or set to 1, leading dims dropped), else random. */
const broadcastPair = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(goodShape(4), fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }), fc.nat(4), fc.nat(4))
      .map(([out, ones, dropA, dropB]) => [
        out.map((d, i) => (ones[i] ? 1 : d)).slice(Math.min(dropA, out.length)),
        out.map((d, i) => (ones[i + 4] ? 1 : d)).slice(Math.min(dropB, out.length)),
      ]),
  },
  { weight: 1, arbitrary: fc.tuple(goodShape(3), goodShape(3)) },
);

// ---------------------------------------------------------------- the check

interface Case {
  /** What was called, for the counterexample report. */
  label: string;
  /** The metagrad call (tensors it creates are pushed to `made`). */
  run: (made: Tensor[]) => Tensor;
  /** The reference answer; throws where the input is invalid. */
  want: () => RefTensor;
  rtol?: number;
  atol?: number;
}

const tally = { values: 0, errors: 0 };

function isNamed(e: unknown): boolean {
  return NAMED_ERRORS.some((cls) => e instanceof cls);
}

/**
 * Runs one case: a named error (from the call or the readback) is accepted, a returned value must match the
 * reference, and every tensor made for the case must be gone afterwards on both devices.
 */
async function check(c: Case): Promise<void> {
  const baseline = [main.memory().liveTensors, other.memory().liveTensors];
  const made: Tensor[] = [];
  let out: Tensor | undefined;
  let error: unknown;
  let got: { shape: number[]; data: Float64Array } | undefined;
  try {
    out = c.run(made);
    got = { shape: [...out.shape], data: Float64Array.from(await out.toArray()) };
  } catch (e) {
    error = e;
  } finally {
    out?.dispose();
    raw.dispose(made);
  }
  const live = [main.memory().liveTensors, other.memory().liveTensors];
  if (live[0] !== baseline[0] || live[1] !== baseline[1]) {
    expect.fail(`${c.label}: leaked tensors (live ${live.join('/')} against ${baseline.join('/')})${error ? ` after ${String(error)}` : ''}`);
  }
  if (error !== undefined) {
    if (!isNamed(error)) expect.fail(`${c.label}: threw an unnamed error: ${(error as Error)?.stack ?? String(error)}`);
    tally.errors++;
    return;
  }
  let want: RefTensor;
  try {
    want = c.want();
  } catch (e) {
    expect.fail(
      `${c.label}: returned shape [${got!.shape.join(', ')}] [${Array.from(got!.data).slice(0, 8).join(', ')}…] where the reference rejects the input: ${String(e)}`,
    );
  }
  expectClose(c.label, got!, want, c.rtol ?? 1e-4, c.atol ?? 1e-5);
  tally.values++;
}

function expectClose(label: string, got: { shape: number[]; data: Float64Array }, want: RefTensor, rtol: number, atol: number): void {
  if (got.shape.length !== want.shape.length || got.shape.some((d, i) => d !== want.shape[i])) {
    expect.fail(`${label}: shape [${got.shape.join(', ')}], reference [${want.shape.join(', ')}]`);
  }
  for (let i = 0; i < want.data.length; i++) {
    const [x, w] = [got.data[i], Math.abs(want.data[i]) > 3.4028235e38 ? want.data[i] * Infinity : want.data[i]];
    if (Number.isNaN(w) ? Number.isNaN(x) : x === w || Math.abs(x - w) <= atol + rtol * Math.abs(w)) continue;
    expect.fail(`${label}: element ${i} is ${x}, reference ${w}`);
  }
}

const prop = <T>(arb: fc.Arbitrary<T>, toCase: (v: T) => Case, share = 1) =>
  fc.assert(
    fc.asyncProperty(arb, (v) => check(toCase(v))),
    { numRuns: Math.max(1, Math.round(RUNS * share)) },
  );

const show = (v: unknown): string =>
  JSON.stringify(v, (_k, x) => (typeof x === 'number' && !Number.isFinite(x) ? String(x) : x === undefined ? 'undefined' : x));
const specStr = (s: TensorSpec) => `${s.dtype}[${s.shape.join(',')}]${s.onOther ? '@other' : ''}`;

// ---------------------------------------------------------------- creation

/** Builds nested arrays of `shape` from flat data, optionally made ragged or holding a non-number. */
function nest(flat: readonly unknown[], shape: readonly number[]): unknown {
  if (shape.length === 0) return flat[0];
  const inner = sizeOf(shape.slice(1));
  return Array.from({ length: shape[0] }, (_, i) => nest(flat.slice(i * inner, (i + 1) * inner), shape.slice(1)));
}

describe('creation ops', () => {
  it('tensor() from nested, ragged or non-numeric host data and any dtype string', () =>
    prop(
      fc.record({
        shape: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }),
        values: fc.array(fc.oneof(fc.integer({ min: -5, max: 5 }), fc.double({ min: -10, max: 10, noNaN: true }), fc.constantFrom(NaN, Infinity, 2 ** 31)), {
          minLength: 27,
          maxLength: 27,
        }),
        dtype: fc.oneof({ weight: 3, arbitrary: fc.constantFrom<string | undefined>(undefined, 'f32', 'i32') }, { weight: 1, arbitrary: badDType }),
        flaw: fc.constantFrom('none', 'none', 'none', 'ragged', 'string', 'undefined', 'object'),
        at: fc.nat(),
      }),
      ({ shape, values, dtype, flaw, at }) => {
        const n = sizeOf(shape);
        const flat: unknown[] = values.slice(0, n);
        const bad = { string: 'a', undefined, object: {} } as Record<string, unknown>;
        if (flaw in bad) flat[at % n] = bad[flaw];
        const data = nest(flat, shape) as unknown[];
        // A ragged array: one extra top-level row one longer than its siblings (or an array among numbers).
        if (flaw === 'ragged') data.push(shape.length === 1 ? [1] : new Array(shape[1] + 1).fill(0));
        return {
          label: `tensor(${show(data)}, undefined, ${show(dtype)})`,
          run: () => raw.tensor(data as never, undefined, dtype as DType | undefined),
          want: () => {
            if (flaw !== 'none') throw new Error(`flawed input (${flaw})`);
            return ref.tensor(flat as number[], shape, (dtype ?? 'f32') as DType);
          },
        };
      },
    ));

  it('full / zeros / arange / eye with bad shapes, values, sizes and dtypes', () =>
    prop(
      fc.record({
        op: fc.constantFrom('full', 'zeros', 'ones', 'arange', 'eye'),
        shape: shapeArg,
        dtype: dtypeArg,
        value: fc.oneof(fc.integer({ min: -3, max: 3 }) as fc.Arbitrary<unknown>, fc.constantFrom<unknown>(1.5, NaN, 'x', undefined, 2 ** 40)),
        range: fc.tuple(intArg(-4, 4), intArg(-4, 6), fc.oneof(intArg(1, 2), fc.constantFrom<unknown>(0, 0.5, -1))),
        nm: fc.tuple(intArg(0, 3), intArg(0, 3)),
      }),
      ({ op, shape, dtype, value, range, nm }) => {
        const dt = dtype as DType;
        const sh = shape as number[];
        if (op === 'arange') {
          const [a, b, s] = range as number[];
          return {
            label: `arange(${show(range)}, ${dt})`,
            run: () => raw.arange(a, b, s, dt),
            want: () => ref.arange(a, b, s, dt),
          };
        }
        if (op === 'eye') {
          const [n, m] = nm as number[];
          return {
            label: `eye(${show(nm)}, ${dt})`,
            run: () => raw.eye(n, m, dt),
            want: () => (ref.toDTypeValue(0, dt), ref.eye(n, m)),
          };
        }
        const v = op === 'zeros' ? 0 : op === 'ones' ? 1 : (value as number);
        const run = op === 'full' ? () => raw.full(sh, v, dt) : op === 'zeros' ? () => raw.zeros(sh, dt) : () => raw.ones(sh, dt);
        return {
          label: `${op}(${show(shape)}, ${op === 'full' ? `${show(value)}, ` : ''}${dt})`,
          run,
          want: () => {
            if (!Array.isArray(shape)) throw new Error('shape is not an array');
            if (typeof v !== 'number' || (dt !== 'f32' && !Number.isInteger(v))) throw new Error('value does not fit');
            return ref.full(sh, v, dt);
          },
        };
      },
    ));
});

// ---------------------------------------------------------------- elementwise

const UNARY = ['neg', 'exp', 'log', 'tanh', 'sigmoid', 'sqrt', 'abs', 'relu', 'square', 'floor', 'sign'] as const;
const BINARY = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'eq', 'lt', 'ge'] as const;

describe('elementwise ops', () => {
  it('unary ops on f32 and i32 tensors', () =>
    prop(fc.tuple(fc.constantFrom(...UNARY), spec(fc.array(dim, { maxLength: 3 }), fc.constantFrom('f32', 'i32'))), ([op, xs]) => ({
      label: `${op}(${specStr(xs)})`,
      run: (made) => raw[op](build(xs, made).t),
      want: () => ref[op](build(xs, []).r),
    })));

  it('binary ops with broadcasting, mixed dtypes and a second device', () =>
    prop(
      fc.tuple(fc.constantFrom(...BINARY), broadcastPair, fc.constantFrom('f32', 'i32'), fc.constantFrom('f32', 'i32'), seed, onOther),
      ([op, [sa, sb], da, db, s, far]) => {
        const a: TensorSpec = { shape: sa, dtype: da, seed: s, onOther: false };
        const b: TensorSpec = { shape: sb, dtype: db, seed: s + 1, onOther: far };
        return {
          label: `${op}(${specStr(a)}, ${specStr(b)})`,
          run: (made) => raw[op](build(a, made).t, build(b, made).t),
          want: () => {
            if (far) throw new Error('operands on two devices');
            if (da !== db) throw new Error('dtypes differ');
            return ref[op](build(a, []).r, build(b, []).r);
          },
        };
      },
    ));

  it('scalar ops, where, cast and axpby with bad scalars and dtypes', () =>
    prop(
      fc.record({
        op: fc.constantFrom('addScalar', 'mulScalar', 'powScalar', 'where', 'cast', 'axpby'),
        x: spec(fc.array(dim, { maxLength: 3 }), fc.constantFrom('f32', 'i32')),
        y: spec(fc.array(dim, { maxLength: 3 })),
        scalar: fc.oneof(fc.integer({ min: -3, max: 3 }) as fc.Arbitrary<unknown>, fc.constantFrom<unknown>(0.5, NaN, '2', undefined, 2 ** 40)),
        dtype: dtypeArg,
      }),
      ({ op, x, y, scalar, dtype }) => {
        const s = scalar as number;
        if (op === 'cast') {
          return {
            label: `cast(${specStr(x)}, ${dtype})`,
            run: (m) => raw.cast(build(x, m).t, dtype as DType),
            want: () => ref.cast(build(x, []).r, dtype as DType, x.dtype),
          };
        }
        if (op === 'where') {
          const c = { ...x, dtype: 'f32' as const };
          return {
            label: `where(${specStr(c)}, ${specStr(y)}, ${specStr(y)})`,
            run: (m) => raw.where(build(c, m).t, build(y, m).t, build({ ...y, seed: y.seed + 1 }, m).t),
            want: () => {
              if (c.onOther !== y.onOther) throw new Error('two devices');
              return ref.where(build(c, []).r, build(y, []).r, build({ ...y, seed: y.seed + 1 }, []).r);
            },
          };
        }
        if (op === 'axpby') {
          return {
            label: `axpby(${show(scalar)}, ${specStr(x)}, 2, ${specStr(y)})`,
            run: (m) => raw.axpby(s, build(x, m).t, 2, build(y, m).t),
            want: () => {
              if (typeof s !== 'number' || x.onOther !== y.onOther || x.dtype !== 'f32' || x.shape.join() !== y.shape.join()) throw new Error('invalid');
              return ref.axpby(s, build(x, []).r, 2, build(y, []).r);
            },
          };
        }
        const refOp = { addScalar: ref.addScalar, mulScalar: ref.mulScalar, powScalar: ref.powScalar }[op];
        return {
          label: `${op}(${specStr(x)}, ${show(scalar)})`,
          run: (m) => raw[op](build(x, m).t, s),
          want: () => {
            if (typeof s !== 'number' || (x.dtype === 'i32' && !(Number.isInteger(s) && Math.abs(s) < 2 ** 31))) throw new Error('scalar does not fit');
            return refOp(build(x, []).r, s);
          },
        };
      },
    ));
});

// ---------------------------------------------------------------- reductions, matmul

const axisArg = fc.oneof({ weight: 5, arbitrary: fc.integer({ min: -4, max: 3 }) as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: badInt });
const axesArg = fc.oneof(
  { weight: 2, arbitrary: fc.constant<unknown>(undefined) },
  { weight: 3, arbitrary: axisArg },
  { weight: 3, arbitrary: fc.array(axisArg, { maxLength: 3 }) as fc.Arbitrary<unknown> },
);

describe('reductions and matmul', () => {
  it('sum / mean / max / min / logsumexp / argmax / softmax / logSoftmax with any axes', () =>
    prop(
      fc.record({
        op: fc.constantFrom('sum', 'mean', 'max', 'min', 'logsumexp', 'argmax', 'softmax', 'logSoftmax'),
        x: spec(
          fc.array(dim, { maxLength: 3 }),
          fc.oneof({ weight: 5, arbitrary: fc.constant('f32' as const) }, { weight: 1, arbitrary: fc.constant('i32' as const) }),
        ),
        axes: axesArg,
        keepDims: fc.boolean(),
      }),
      ({ op, x, axes, keepDims }) => {
        const label = `${op}(${specStr(x)}, ${show(axes)}, ${keepDims})`;
        const refAxes = () => {
          if (x.dtype !== 'f32') throw new Error('not f32');
          if (axes === undefined) return undefined;
          const list = (typeof axes === 'number' ? [axes] : axes) as number[];
          if (!Array.isArray(list) || list.some((a) => !Number.isInteger(a))) throw new Error('bad axes');
          return list;
        };
        if (op === 'argmax' || op === 'softmax' || op === 'logSoftmax') {
          const axis = axes as number;
          const gpu = (t: Tensor) => (op === 'argmax' ? raw.argmax(t, axis, keepDims) : raw[op](t, axis));
          return {
            label,
            run: (m) => gpu(build(x, m).t),
            want: () => {
              const a = refAxes();
              if (a?.length !== 1 || typeof axes !== 'number') throw new Error('one axis needed');
              const r = build(x, []).r;
              return op === 'argmax' ? ref.argmax(r, axis, keepDims) : ref[op](r, axis);
            },
          };
        }
        return {
          label,
          run: (m) => raw[op](build(x, m).t, axes as number[], keepDims),
          want: () => ref[op](build(x, []).r, refAxes(), keepDims),
        };
      },
    ));

  it('matmul with transposes, broadcast batches, mismatched inner dims and devices', () =>
    prop(
      fc.record({
        batchA: goodShape(2),
        batchB: goodShape(2),
        mkn: fc.tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 4 })),
        transA: fc.boolean(),
        transB: fc.boolean(),
        s: seed,
        far: onOther,
      }),
      ({ batchA, batchB, mkn: [M, K, N, Kb], transA, transB, s, far }) => {
        const kB = Kb % 3 === 0 ? K : Kb; // mostly matching inner dims
        const a: TensorSpec = {
          shape: [...batchA, ...(transA ? [K, M] : [M, K])],
          dtype: 'f32',
          seed: s,
          onOther: false,
        };
        const b: TensorSpec = {
          shape: [...batchB, ...(transB ? [N, kB] : [kB, N])],
          dtype: 'f32',
          seed: s + 1,
          onOther: far,
        };
        return {
          label: `matmul(${specStr(a)}${transA ? 'ᵀ' : ''}, ${specStr(b)}${transB ? 'ᵀ' : ''})`,
          run: (m) => raw.matmul(build(a, m).t, build(b, m).t, { transA, transB }),
          want: () => {
            if (far) throw new Error('two devices');
            return ref.matmul(build(a, []).r, build(b, []).r, { transA, transB });
          },
        };
      },
    ));
});

// ---------------------------------------------------------------- conv, pool, random

const pairArg = (min: number, max: number) =>
  fc.oneof({ weight: 4, arbitrary: intArg(min, max) }, { weight: 1, arbitrary: fc.tuple(intArg(min, max), intArg(min, max)) as fc.Arbitrary<unknown> });

describe('conv, pool and random ops', () => {
  it('conv2d and the pools with fractional, negative or NaN geometry', () =>
    prop(
      fc.record({
        op: fc.constantFrom('conv2d', 'maxPool2d', 'avgPool2d'),
        nchw: fc.tuple(fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 2 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 })),
        k: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
        o: fc.integer({ min: 1, max: 2 }),
        stride: pairArg(1, 2),
        padding: pairArg(0, 1),
        groups: fc.oneof({ weight: 4, arbitrary: fc.constant<unknown>(1) }, { weight: 1, arbitrary: badInt }),
        // Now and then the options are not an object at all (F.max_pool2d(x, 2) habit).
        notAnObject: fc.oneof(
          { weight: 8, arbitrary: fc.constant<unknown>(undefined) },
          { weight: 1, arbitrary: fc.constantFrom<unknown>(2, 'same', [2, 2], null, { stide: 2 }) },
        ),
        s: seed,
        far: onOther,
      }),
      ({ op, nchw, k, o, stride, padding, groups, notAnObject, s, far }) => {
        const x: TensorSpec = { shape: nchw, dtype: 'f32', seed: s, onOther: false };
        const opts = { stride, padding } as Record<string, unknown>;
        if (notAnObject !== undefined && !(op === 'conv2d' && notAnObject === null)) {
          return {
            label: `${op}(${specStr(x)}, …, ${show(notAnObject)})`,
            run: (m) =>
              op === 'conv2d'
                ? raw.conv2d(build(x, m).t, build({ ...x, shape: [o, nchw[1], ...k] }, m).t, notAnObject as never)
                : raw[op](build(x, m).t, notAnObject as never),
            want: fail,
          };
        }
        if (op === 'conv2d') {
          const w: TensorSpec = { shape: [o, nchw[1], ...k], dtype: 'f32', seed: s + 1, onOther: far };
          const copts = { ...opts, groups } as raw.Conv2dOptions;
          return {
            label: `conv2d(${specStr(x)}, ${specStr(w)}, ${show(copts)})`,
            run: (m) => raw.conv2d(build(x, m).t, build(w, m).t, copts),
            want: () => {
              if (far) throw new Error('two devices');
              return ref.conv2d(build(x, []).r, build(w, []).r, copts);
            },
          };
        }
        const popts = { ...opts, kernel: k } as raw.Pool2dOptions;
        return {
          label: `${op}(${specStr(x)}, ${show(popts)})`,
          run: (m) => raw[op](build(x, m).t, popts),
          want: () => ref[op](build(x, []).r, popts),
        };
      },
      2 / 3,
    ));

  it('random streams with bad seeds, offsets, shapes and bounds', () =>
    prop(
      fc.record({
        op: fc.constantFrom('uniform', 'normal', 'randint', 'bernoulli', 'permutation'),
        shape: shapeArg,
        seed: fc.oneof(
          { weight: 4, arbitrary: fc.nat() as fc.Arbitrary<unknown> },
          { weight: 1, arbitrary: fc.constantFrom<unknown>(-1, 0.5, NaN, 2 ** 60, '1', undefined, [1], [1, 2 ** 32]) },
        ),
        offset: fc.oneof({ weight: 4, arbitrary: fc.constant<unknown>(undefined) }, { weight: 1, arbitrary: intArg(0, 5) }),
        p: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }) as fc.Arbitrary<unknown>, fc.constantFrom<unknown>(-0.5, 2, NaN, '0.5')),
        bounds: fc.tuple(intArg(-3, 3), intArg(-3, 5)),
        n: intArg(0, 9),
      }),
      ({ op, shape, seed: sd, offset, p, bounds, n }) => {
        const sh = shape as number[];
        const opts = { offset: offset as number };
        const label = `${op}(${show(op === 'permutation' ? n : shape)}, seed ${show(sd)}, ${show(opts)}${op === 'bernoulli' ? `, p ${show(p)}` : op === 'randint' ? `, ${show(bounds)}` : ''})`;
        const s = sd as number;
        const [lo, hi] = bounds as number[];
        const cases = {
          uniform: [() => raw.uniform(sh, s, opts), () => ref.uniform(sh, s, opts)],
          normal: [() => raw.normal(sh, s, opts), () => ref.normal(sh, s, opts)],
          randint: [() => raw.randint(sh, s, lo, hi, opts), () => ref.randint(sh, s, lo, hi, opts)],
          bernoulli: [() => raw.bernoulli(sh, s, p as number, opts), () => ref.bernoulli(sh, s, p as number, opts)],
          permutation: [() => raw.permutation(n as number, s, opts), () => ref.permutation(n as number, s, opts)],
        } as const;
        const [run, want] = cases[op];
        return {
          label,
          run,
          want: () => {
            if (!Array.isArray(shape) && op !== 'permutation') throw new Error('shape is not an array');
            if (op === 'bernoulli' && typeof p !== 'number') throw new Error('p is not a number');
            return want();
          },
          atol: 1e-5,
        };
      },
    ));
});

// ---------------------------------------------------------------- resample, backward ops, dot

/** A 4-D shape given by the caller (inputShape, size), now and then with one bad dim. */
const shape4Arg = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.tuple(
      fc.integer({ min: 1, max: 2 }),
      fc.integer({ min: 1, max: 2 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 4 }),
    ) as fc.Arbitrary<unknown[]>,
  },
  { weight: 1, arbitrary: fc.tuple(fc.constant(1), fc.constant(1), badInt, fc.constant(2)) as fc.Arbitrary<unknown[]> },
);

describe('resample, backward ops and dot', () => {
  it('affineGrid / gridSample / avgPool2dBackward / conv2dInputGrad / dot with caller-given shapes and devices', () =>
    prop(
      fc.record({
        op: fc.constantFrom('affineGrid', 'gridSample', 'avgPool2dBackward', 'conv2dInputGrad', 'dot'),
        size: shape4Arg,
        k: fc.integer({ min: 1, max: 2 }),
        grid: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
        alignCorners: fc.boolean(),
        s: seed,
        far: onOther,
      }),
      ({ op, size, k, grid: [Ho, Wo], alignCorners, s, far }) => {
        const sz = size as number[];
        const ok = sz.every((d) => Number.isInteger(d));
        const [N, C, H, W] = ok ? sz : [1, 1, 2, 2];
        const label = `${op}(size ${show(size)}, k ${k}, grid ${Ho}×${Wo}, align ${alignCorners}${far ? ', @other' : ''})`;
        const noFar = () => (far ? fail() : undefined);
        if (op === 'affineGrid') {
          const theta: TensorSpec = { shape: [N, 2, 3], dtype: 'f32', seed: s, onOther: far };
          return {
            label,
            run: (m) => raw.affineGrid(build(theta, m).t, sz, alignCorners),
            want: () => ref.affineGrid(build(theta, []).r, sz, alignCorners),
          };
        }
        if (op === 'gridSample') {
          const x: TensorSpec = { shape: [N, C, H, W], dtype: 'f32', seed: s, onOther: false };
          const g: TensorSpec = { shape: [N, Ho, Wo, 2], dtype: 'f32', seed: s + 1, onOther: far };
          return {
            label,
            run: (m) => raw.gridSample(build(x, m).t, build(g, m).t, { alignCorners }),
            want: () => (noFar(), ref.gridSample(build(x, []).r, build(g, []).r, { alignCorners })),
          };
        }
        if (op === 'avgPool2dBackward') {
          const gy: TensorSpec = {
            shape: [N, C, Math.floor(H / k), Math.floor(W / k)],
            dtype: 'f32',
            seed: s,
            onOther: false,
          };
          return {
            label,
            run: (m) => raw.avgPool2dBackward(build(gy, m).t, sz, { kernel: k }),
            want: () => ref.avgPool2dBackward(build(gy, []).r, sz, { kernel: k }),
          };
        }
        if (op === 'conv2dInputGrad') {
          const w: TensorSpec = { shape: [2, C, k, k], dtype: 'f32', seed: s + 1, onOther: far };
          const gy: TensorSpec = {
            shape: [N, 2, Math.max(0, H - k + 1), Math.max(0, W - k + 1)],
            dtype: 'f32',
            seed: s,
            onOther: false,
          };
          return {
            label,
            run: (m) => raw.conv2dInputGrad(build(gy, m).t, build(w, m).t, sz),
            want: () => (noFar(), ref.conv2dInputGrad(build(gy, []).r, build(w, []).r, sz)),
          };
        }
        const a: TensorSpec = { shape: [N, C, H], dtype: 'f32', seed: s, onOther: false };
        const b: TensorSpec = { shape: k === 1 ? [N, C, H] : [N, C, W], dtype: 'f32', seed: s + 1, onOther: far };
        return {
          label: `dot(${specStr(a)}, ${specStr(b)})`,
          run: (m) => raw.dot(build(a, m).t, build(b, m).t),
          want: () => {
            noFar();
            if (a.shape.join() !== b.shape.join()) fail();
            return ref.sum(ref.mul(build(a, []).r, build(b, []).r));
          },
        };
      },
      2 / 3,
    ));
});

// ---------------------------------------------------------------- disposed operands

/** Ops with several tensor operands (4-D ones sized for a 2×2 window), for the disposed-operand property. */
const MULTI_OPERAND: [string, number[][], (ts: Tensor[]) => Tensor][] = [
  ['add', [[2], [2]], ([a, b]) => raw.add(a, b)],
  ['dot', [[2], [2]], ([a, b]) => raw.dot(a, b)],
  [
    'matmul',
    [
      [2, 2],
      [2, 2],
    ],
    ([a, b]) => raw.matmul(a, b),
  ],
  [
    'conv2d',
    [
      [1, 1, 3, 3],
      [1, 1, 2, 2],
    ],
    ([a, b]) => raw.conv2d(a, b),
  ],
  [
    'conv2dFilterGrad',
    [
      [1, 1, 3, 3],
      [1, 1, 2, 2],
    ],
    ([a, b]) => raw.conv2dFilterGrad(a, b, [1, 1, 2, 2]),
  ],
  [
    'maxPool2dBackward',
    [
      [1, 1, 1, 1],
      [1, 1, 2, 2],
    ],
    ([a, b]) => raw.maxPool2dBackward(a, b, { kernel: 2 }),
  ],
  [
    'gridSample',
    [
      [1, 1, 2, 2],
      [1, 2, 2, 2],
    ],
    ([a, b]) => raw.gridSample(a, b),
  ],
  [
    'gather',
    [
      [2, 2],
      [2, 2],
    ],
    ([a, b]) => raw.tidy(() => raw.gather(a, 0, raw.cast(b, 'i32'))),
  ],
  ['ag.mse', [[2], [2]], ([a, b]) => ag.mse(a, b)],
];

describe('disposed operands', () => {
  it('a disposed operand is a DisposedTensorError and nothing leaks', () =>
    prop(
      fc.tuple(fc.nat(MULTI_OPERAND.length - 1), fc.nat(2), seed),
      ([i, dead, s]) => {
        const [name, shapes, call] = MULTI_OPERAND[i];
        return {
          label: `${name} with operand ${dead % shapes.length} disposed`,
          run: (m) => {
            const ts = shapes.map((shape, j) => build({ shape, dtype: 'f32', seed: s + j, onOther: false }, m).t);
            ts[dead % ts.length].dispose();
            return call(ts);
          },
          want: fail,
        };
      },
      1 / 3,
    ));
});

// ---------------------------------------------------------------- indexing and concat (movement.ts)

describe('index ops and concat', () => {
  it('gather / indexSelect / scatterAdd / oneHot with out-of-range, negative or f32 indices on either device, concat across devices', () =>
    prop(
      fc.record({
        op: fc.constantFrom('gather', 'indexSelect', 'scatterAdd', 'oneHot', 'concat'),
        xShape: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }),
        axis: axisArg,
        len: fc.integer({ min: 0, max: 3 }),
        values: fc.array(fc.nat(), { minLength: 27, maxLength: 27 }),
        outOfRange: fc.oneof({ weight: 3, arbitrary: fc.constant<number | null>(null) }, { weight: 1, arbitrary: fc.constantFrom<number | null>(-1, 0) }),
        indexDtype: fc.oneof({ weight: 5, arbitrary: fc.constant<'i32' | 'f32'>('i32') }, { weight: 1, arbitrary: fc.constant<'i32' | 'f32'>('f32') }),
        classes: intArg(1, 4),
        s: seed,
        far: onOther,
      }),
      ({ op, xShape, axis, len, values, outOfRange, indexDtype, classes, s, far }) => {
        const rank = xShape.length;
        const ax = Number.isInteger(axis) && (axis as number) >= -rank && (axis as number) < rank ? ((axis as number) + rank) % rank : 0;
        const x: TensorSpec = { shape: xShape, dtype: 'f32', seed: s, onOther: false };
        const bound = op === 'oneHot' ? (Number.isInteger(classes) && (classes as number) > 0 ? (classes as number) : 3) : xShape[ax];
        const idxShape = op === 'indexSelect' ? [len] : op === 'oneHot' ? xShape : xShape.map((d, i) => (i === ax ? len : d));
        const data = values.slice(0, sizeOf(idxShape)).map((v) => v % bound);
        // One index just past either end of its dimension: -1 or the bound itself.
        if (outOfRange !== null && data.length > 0) data[s % data.length] = outOfRange === -1 ? -1 : bound;
        const index = () => ({ shape: idxShape, data: Float64Array.from(data) });
        const makeIndex = (m: Tensor[]) => {
          const t = raw.tensor(data, idxShape, indexDtype, far ? other : main);
          m.push(t);
          return t;
        };
        const label = `${op}(${specStr(x)}, axis ${show(axis)}, ${indexDtype}[${idxShape.join(',')}] ${show(data)}${far ? '@other' : ''}${op === 'oneHot' ? `, ${show(classes)}` : ''})`;
        const valid = () => {
          if (far && op !== 'oneHot') fail(); // oneHot has one operand: the second device is fine
          if (op !== 'concat' && indexDtype !== 'i32') fail();
        };
        if (op === 'gather') {
          return {
            label,
            run: (m) => raw.gather(build(x, m).t, axis as number, makeIndex(m)),
            want: () => (valid(), ref.gather(build(x, []).r, axis as number, index())),
          };
        }
        if (op === 'indexSelect') {
          return {
            label,
            run: (m) => raw.indexSelect(build(x, m).t, axis as number, makeIndex(m)),
            want: () => (valid(), ref.indexSelect(build(x, []).r, axis as number, index())),
          };
        }
        if (op === 'scatterAdd') {
          const src: TensorSpec = { shape: idxShape, dtype: 'f32', seed: s + 1, onOther: false };
          return {
            label,
            run: (m) => raw.scatterAdd(build(x, m).t, axis as number, makeIndex(m), build(src, m).t),
            want: () => (valid(), ref.scatterAdd(build(x, []).r, axis as number, index(), build(src, []).r)),
          };
        }
        if (op === 'oneHot') {
          return {
            label,
            run: (m) => raw.oneHot(makeIndex(m), classes as number),
            want: () => (valid(), ref.oneHot(index(), classes as number)),
          };
        }
        const y: TensorSpec = {
          shape: xShape.map((d, i) => (i === ax ? len : d)),
          dtype: 'f32',
          seed: s + 1,
          onOther: far,
        };
        return {
          label: `concat([${specStr(x)}, ${specStr(y)}], ${show(axis)})`,
          run: (m) => raw.concat([build(x, m).t, build(y, m).t], axis as number),
          want: () => (valid(), ref.concat([build(x, []).r, build(y, []).r], axis as number)),
        };
      },
    ));
});

// ---------------------------------------------------------------- autograd ops and losses

describe('autograd ops and losses', () => {
  it('differentiable add / matmul / sum and their gradients, mse and crossEntropy with bad shapes and labels', () =>
    prop(
      fc.record({
        op: fc.constantFrom('add', 'matmul', 'sumGrad', 'mse', 'crossEntropy'),
        pair: broadcastPair,
        s: seed,
        far: onOther,
        labelDtype: fc.oneof({ weight: 4, arbitrary: fc.constant<'i32' | 'f32'>('i32') }, { weight: 1, arbitrary: fc.constant<'i32' | 'f32'>('f32') }),
        badLabel: fc.oneof({ weight: 3, arbitrary: fc.constant<number | null>(null) }, { weight: 1, arbitrary: fc.constantFrom<number | null>(-1, 0) }),
      }),
      ({ op, pair: [sa, sb], s, far, labelDtype, badLabel }) => {
        const a: TensorSpec = { shape: sa, dtype: 'f32', seed: s, onOther: false };
        const b: TensorSpec = { shape: sb, dtype: 'f32', seed: s + 1, onOther: far };
        const label = `ag.${op}(${specStr(a)}, ${specStr(b)})`;
        if (op === 'add')
          return {
            label,
            run: (m) => ag.add(build(a, m).t, build(b, m).t),
            want: () => (far ? fail() : ref.add(build(a, []).r, build(b, []).r)),
          };
        if (op === 'matmul')
          return {
            label,
            run: (m) => ag.matmul(build(a, m).t, build(b, m).t),
            want: () => (far ? fail() : ref.matmul(build(a, []).r, build(b, []).r)),
          };
        if (op === 'sumGrad') {
          // d/da Σ (a·b) = b broadcast back to a's shape: summed over a's broadcast dims.
          return {
            label: `grad(sum(a·b), a) for ${specStr(a)}, ${specStr(b)}`,
            run: (m) => {
              const x = ag.requiresGrad(build(a, m).t);
              const y = build(b, m).t;
              return raw.tidy(() => ag.grad(ag.sum(ag.mul(x, y)), x)[0]);
            },
            want: () => {
              if (far) fail();
              const prod = ref.mul(build(a, []).r, ref.filled(sb, 1));
              const gOut = ref.mul(ref.filled(prod.shape, 1), build(b, []).r);
              const lead = gOut.shape.length - sa.length;
              const axes = gOut.shape.map((_, i) => i).filter((i) => i < lead || sa[i - lead] === 1);
              return ref.reshape(ref.sum(gOut, axes, false), sa);
            },
          };
        }
        if (op === 'mse') {
          return {
            label,
            run: (m) => ag.mse(build(a, m).t, build(b, m).t),
            // torch semantics without its broadcast warning: shapes must be equal.
            want: () => (far || sa.join() !== sb.join() ? fail() : ref.mean(ref.square(ref.sub(build(a, []).r, build(b, []).r)))),
          };
        }
        // crossEntropy: logits [B, K] from a's first two dims, labels [B], now and then one of them -1 or K.
        const [B, K] = [sa[0] ?? 1, sa[1] ?? 1];
        const logits: TensorSpec = { shape: [B, K], dtype: 'f32', seed: s, onOther: false };
        const labels = Array.from({ length: sb[0] ?? B }, (_, i) => (s + i) % K);
        if (badLabel !== null) labels[s % labels.length] = badLabel === -1 ? -1 : K;
        return {
          label: `ag.crossEntropy(${specStr(logits)}, ${labelDtype}${show(labels)})`,
          run: (m) => {
            const y = raw.tensor(labels, undefined, labelDtype, far ? other : main);
            m.push(y);
            return ag.crossEntropy(build(logits, m).t, y);
          },
          want: () => {
            if (far || labelDtype !== 'i32' || labels.length !== B || labels.some((c) => c < 0 || c >= K)) fail();
            const ls = ref.logSoftmax(build(logits, []).r, 1);
            return { shape: [], data: Float64Array.of(-labels.reduce((acc, c, i) => acc + ls.data[i * K + c], 0) / B) };
          },
        };
      },
    ));
});

/** prop(), and this property on its own compared some values and saw some named errors (it is not vacuous). */
async function propSeeingBoth<T>(arb: fc.Arbitrary<T>, toCase: (v: T) => Case): Promise<void> {
  const before = { ...tally };
  await prop(arb, toCase);
  expect(tally.values - before.values, 'values compared').toBeGreaterThan(10);
  expect(tally.errors - before.errors, 'named errors seen').toBeGreaterThan(10);
}

// ---------------------------------------------------------------- movement ops (movement.ts)

/** Slice bounds a JS caller may pass by mistake: fractions, NaN, ±Infinity, strings, null, undefined. */
const badBound = fc.constantFrom<unknown>(0.5, -1.5, NaN, Infinity, -Infinity, '1', null, undefined);
const boundArg = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: -4, max: 4 }) as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: badBound });
/** An integer list (mostly), now and then not a list at all. */
const listOf = (item: fc.Arbitrary<unknown>, maxLength = 3) =>
  fc.oneof(
    { weight: 8, arbitrary: fc.array(item, { maxLength }) as fc.Arbitrary<unknown> },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(1, '0', null, undefined) },
  );
/** A second concat operand: usually a tensor, sometimes a number, null, an array or a plain object. */
const notATensor = fc.constantFrom<unknown>(3, null, undefined, [1, 2], { shape: [1] }, 'x');

describe('movement ops', () => {
  it('reshape / permute / transpose / expand / slice / pad / flip / concat with fractional, repeated or non-array arguments and non-tensor operands', () =>
    propSeeingBoth(
      fc.record({
        op: fc.constantFrom('reshape', 'permute', 'transpose', 'expand', 'slice', 'pad', 'flip', 'concat'),
        x: spec(goodShape(3)),
        shape: listOf(fc.oneof({ weight: 4, arbitrary: fc.integer({ min: -1, max: 3 }) as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: badInt }), 4),
        axes: listOf(axisArg),
        a: axisArg,
        b: axisArg,
        starts: listOf(boundArg),
        ends: listOf(boundArg),
        steps: fc.oneof({ weight: 2, arbitrary: fc.constant<unknown>(undefined) }, { weight: 2, arbitrary: listOf(intArg(1, 3)) }),
        pads: fc.oneof(
          {
            weight: 6,
            arbitrary: fc.array(fc.tuple(intArg(-1, 2), intArg(-1, 2)), { maxLength: 3 }) as fc.Arbitrary<unknown>,
          },
          { weight: 1, arbitrary: fc.constantFrom<unknown>(1, [[1]], [null], null) },
        ),
        value: fc.oneof({ weight: 6, arbitrary: fc.constantFrom<unknown>(0, 1.5, -Infinity) }, { weight: 1, arbitrary: fc.constantFrom<unknown>('1', null) }),
        second: fc.oneof({ weight: 3, arbitrary: fc.constant<unknown>('tensor') }, { weight: 1, arbitrary: notATensor }),
      }),
      ({ op, x, shape, axes, a, b, starts, ends, steps, pads, value, second }) => {
        // reshape/expand targets: sometimes x's own size ([-1], its dims with a leading 1), else the random list.
        const target = Array.isArray(shape) && shape.length === 0 ? [...x.shape] : shape;
        const args = {
          reshape: [target],
          permute: [axes],
          transpose: [a, b],
          expand: [target],
          slice: [starts, ends, steps],
          pad: [pads, value],
          flip: [axes],
          concat: [a],
        }[op]!;
        const label = `${op}(${specStr(x)}, ${args.map(show).join(', ')}${op === 'concat' ? `, second ${show(second)}` : ''})`;
        const call = (lib: typeof raw | typeof ref, t: unknown, other: unknown) =>
          (lib as unknown as Record<string, (...v: unknown[]) => unknown>)[op](...(op === 'concat' ? [[t, other], ...args] : [t, ...args]));
        const y: TensorSpec = { ...x, seed: x.seed + 1, onOther: false };
        return {
          label,
          run: (m) => call(raw, build(x, m).t, second === 'tensor' ? build(y, m).t : second) as Tensor,
          want: () => {
            if (x.onOther && op === 'concat' && second === 'tensor') fail();
            return call(ref, build(x, []).r, second === 'tensor' ? build(y, []).r : second) as RefTensor;
          },
        };
      },
    ));
});

// ---------------------------------------------------------------- autograd wrappers with options

/** Options objects as callers write them: right, with a typo, positional, or with a flag that is not a boolean. */
const matmulOpts = fc.constantFrom<unknown>(
  undefined,
  null,
  {},
  { transA: true },
  { transB: true },
  { transA: true, transB: true },
  true,
  [true],
  { transposeB: true },
  { transB: 'true' },
  { transA: 1 },
);
const convOpts = fc.constantFrom<unknown>(
  undefined,
  {},
  { stride: 2 },
  { padding: 1 },
  { strides: 2 },
  { pad: 1 },
  [2, 2],
  'same',
  { stride: null },
  { groups: [1, 1] },
  null,
);
const poolOpts = fc.constantFrom<unknown>(
  { kernel: 2 },
  { kernel: 2, stride: 1 },
  { kernel: 2, strides: 2 },
  { kernal: 2 },
  { kernel: 2, stride: null },
  {},
  2,
  null,
);
const gridOpts = fc.constantFrom<unknown>(undefined, {}, { alignCorners: true }, { alignCorner: true }, { alignCorners: 'false' }, true, null);
const flagArg = fc.constantFrom<unknown>(undefined, false, true, 'false', 1, null);
/** What grad() may be handed as its inputs: the right tensor, or a number, a function, a mixed list, null. */
const gradInputs = fc.constantFrom<unknown>('x', 5, '[x, 5]', 'f', null, 'string');

describe('autograd wrappers with options, and grad given non-tensors', () => {
  it('ag.matmul / conv2d / pools / gridSample / sum / transpose with typo’d, positional or non-boolean options; grad(y, 5) and grad(f, x)', () =>
    propSeeingBoth(
      fc.record({
        op: fc.constantFrom('matmul', 'conv2d', 'maxPool2d', 'avgPool2d', 'gridSample', 'sum', 'transpose', 'grad'),
        dims: fc.tuple(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 })),
        matmulOpts,
        convOpts,
        poolOpts,
        gridOpts,
        keepDims: flagArg,
        axes: axesArg,
        a: axisArg,
        b: axisArg,
        inputs: gradInputs,
        s: seed,
      }),
      (v) => {
        const {
          op,
          dims: [p, q, r],
          s,
        } = v;
        const x2: TensorSpec = { shape: [p, q], dtype: 'f32', seed: s, onOther: false };
        const img: TensorSpec = { shape: [1, 1, 3 + p, 3 + q], dtype: 'f32', seed: s, onOther: false };
        if (op === 'matmul') {
          const b: TensorSpec = { shape: [r, r === 2 ? q : p], dtype: 'f32', seed: s + 1, onOther: false };
          return {
            label: `ag.matmul(${specStr(x2)}, ${specStr(b)}, ${show(v.matmulOpts)})`,
            run: (m) => ag.matmul(build(x2, m).t, build(b, m).t, v.matmulOpts as never),
            want: () => ref.matmul(build(x2, []).r, build(b, []).r, v.matmulOpts as never),
          };
        }
        if (op === 'conv2d') {
          const w: TensorSpec = { shape: [1, 1, r, r], dtype: 'f32', seed: s + 1, onOther: false };
          return {
            label: `ag.conv2d(${specStr(img)}, ${specStr(w)}, ${show(v.convOpts)})`,
            run: (m) => ag.conv2d(build(img, m).t, build(w, m).t, v.convOpts as never),
            want: () => ref.conv2d(build(img, []).r, build(w, []).r, v.convOpts as never),
            rtol: 1e-4,
            atol: 1e-4,
          };
        }
        if (op === 'maxPool2d' || op === 'avgPool2d') {
          return {
            label: `ag.${op}(${specStr(img)}, ${show(v.poolOpts)})`,
            run: (m) => ag[op](build(img, m).t, v.poolOpts as never),
            want: () => ref[op](build(img, []).r, v.poolOpts as never),
          };
        }
        if (op === 'gridSample') {
          const grid: TensorSpec = { shape: [1, p, q, 2], dtype: 'f32', seed: s + 1, onOther: false };
          return {
            label: `ag.gridSample(${specStr(img)}, ${specStr(grid)}, ${show(v.gridOpts)})`,
            run: (m) => ag.gridSample(build(img, m).t, build(grid, m).t, v.gridOpts as never),
            want: () => ref.gridSample(build(img, []).r, build(grid, []).r, v.gridOpts as never),
            atol: 1e-4,
          };
        }
        if (op === 'sum') {
          const axes = typeof v.axes === 'number' ? [v.axes] : v.axes;
          return {
            label: `ag.sum(${specStr(x2)}, ${show(v.axes)}, ${show(v.keepDims)})`,
            run: (m) => ag.sum(build(x2, m).t, v.axes as never, v.keepDims as never),
            want: () => ref.sum(build(x2, []).r, axes as never, v.keepDims as never),
          };
        }
        if (op === 'transpose') {
          return {
            label: `ag.transpose(${specStr(x2)}, ${show(v.a)}, ${show(v.b)})`,
            run: (m) => ag.transpose(build(x2, m).t, v.a as never, v.b as never),
            want: () => ref.transpose(build(x2, []).r, v.a as never, v.b as never),
          };
        }
        // grad(sum(x·x), inputs) = 2x when inputs is x; anything else must be a named error.
        return {
          label: `ag.grad(sum(x·x), ${show(v.inputs)}) for ${specStr(x2)}`,
          run: (m) => {
            const x = ag.requiresGrad(build(x2, m).t);
            return raw.tidy(() => {
              const y = ag.sum(ag.mul(x, x));
              const f = (z: Tensor) => ag.sum(ag.mul(z, z));
              const given = { x, 5: 5, '[x, 5]': [x, 5], f, null: null, string: 'x' }[String(v.inputs)];
              return ag.grad(v.inputs === 'f' ? (f as never) : y, (v.inputs === 'f' ? x : given) as never)[0];
            });
          },
          want: () => (v.inputs === 'x' ? ref.mulScalar(build(x2, []).r, 2) : fail()),
        };
      },
    ));
});

function fail(): never {
  throw new Error('invalid input');
}

describe('the property runs were not vacuous', () => {
  it('compared values and saw named errors', () => {
    expect(tally.values).toBeGreaterThan(50);
    expect(tally.errors).toBeGreaterThan(50);
  });
});
