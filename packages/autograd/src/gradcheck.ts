/** @file gradcheck / gradgradcheck: GPU autograd derivatives against central differences of the float64 reference. */
import { mulberry32 } from '@metagrad/tensor';
import * as raw from '@metagrad/tensor';
import { getDefaultDevice, type Device, type DType, type Tensor } from '@metagrad/tensor';
import { checkFlagOptions } from './args';
import { grad, requiresGrad } from './engine';
import { enableGrad } from './mode';

/** The reference's tensor type (structurally `RefTensor` from the tensor package's float64 reference). */
export interface RefTensorLike {
  shape: readonly number[];
  data: Float64Array;
}

/** A check input: float64 values (rounded to f32 before use); i32 inputs are constants (indices, labels). */
export interface CheckInput extends RefTensorLike {
  dtype?: DType;
}

export interface CheckedFunction {
  gpu: (...inputs: Tensor[]) => Tensor;
  ref: (...inputs: RefTensorLike[]) => RefTensorLike;
}

export interface GradcheckOptions {
  /** Central-difference step on the reference (float64). */
  eps?: number;
  /** Step of the outer difference in gradgradcheck. */
  outerEps?: number;
  atol?: number;
  rtol?: number;
  /** Indices of the inputs to differentiate (default: every f32 input). */
  wrt?: number[];
  /** Seed of the random cotangents and directions. */
  seed?: number;
  /** Throw GradcheckError on failure (default true). */
  raise?: boolean;
  device?: Device;
}

export interface GradcheckReport {
  ok: boolean;
  maxAbsError: number;
  failures: string[];
}

export class GradcheckError extends Error {
  override name = 'GradcheckError';
}

/** mulberry32: reproducible directions without touching the ops under test. */
const random = mulberry32;

function randomVector(n: number, next: () => number): Float64Array {
  return Float64Array.from({ length: n }, () => 2 * next() - 1);
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

class Checker {
  readonly failures: string[] = [];
  maxAbsError = 0;
  constructor(
    private readonly atol: number,
    private readonly rtol: number,
  ) {}

  compare(what: string, got: ArrayLike<number>, want: ArrayLike<number>): void {
    if (got.length !== want.length) {
      this.failures.push(`${what}: ${got.length} values, expected ${want.length}`);
      return;
    }
    let worst = -1;
    let worstErr = 0;
    for (let i = 0; i < want.length; i++) {
      const err = Math.abs(got[i] - want[i]);
      if (!(err <= this.atol + this.rtol * Math.abs(want[i])) && (worst < 0 || err > worstErr)) {
        worst = i;
        worstErr = Number.isNaN(err) ? Infinity : err;
      }
      if (err > this.maxAbsError || Number.isNaN(err)) this.maxAbsError = Number.isNaN(err) ? Infinity : Math.max(this.maxAbsError, err);
    }
    if (worst >= 0) this.failures.push(`${what}: element ${worst} is ${got[worst]}, expected ${want[worst]} (|error| ${worstErr})`);
  }

  report(raise: boolean, name: string): GradcheckReport {
    const report = { ok: this.failures.length === 0, maxAbsError: this.maxAbsError, failures: this.failures };
    if (!report.ok && raise) throw new GradcheckError(`${name} failed:\n  ${this.failures.join('\n  ')}`);
    return report;
  }
}

interface Setup {
  device: Device;
  values: Float64Array[];
  wrt: number[];
  refOut: RefTensorLike;
  next: () => number;
}

function setup(f: CheckedFunction, inputs: readonly CheckInput[], opts: GradcheckOptions): Setup {
  checkFlagOptions('gradcheck', opts, ['eps', 'outerEps', 'atol', 'rtol', 'wrt', 'seed', 'raise', 'device'], ['raise']);
  const values = inputs.map((x) => (x.dtype && x.dtype !== 'f32' ? Float64Array.from(x.data) : Float64Array.from(x.data, Math.fround)));
  const wrt = opts.wrt ?? inputs.flatMap((x, i) => (!x.dtype || x.dtype === 'f32' ? [i] : []));
  const refOut = f.ref(...inputs.map((x, i) => ({ shape: x.shape, data: values[i] })));
  return { device: opts.device ?? getDefaultDevice(), values, wrt, refOut, next: random(opts.seed ?? 1234) };
}

function upload(inputs: readonly CheckInput[], values: Float64Array[], wrt: number[], device: Device): Tensor[] {
  return inputs.map((x, i) => {
    const dtype = x.dtype ?? 'f32';
    const t = raw.tensor(dtype === 'f32' ? Float32Array.from(values[i]) : Int32Array.from(values[i]), [...x.shape], dtype, device);
    return wrt.includes(i) ? requiresGrad(t) : t;
  });
}

/** φ(x) = ⟨u, ref(x)⟩ and its gradient by central differences with respect to the `wrt` inputs. */
function referenceGradient(
  f: CheckedFunction,
  inputs: readonly CheckInput[],
  values: Float64Array[],
  wrt: number[],
  u: Float64Array,
  eps: number,
): Float64Array[] {
  const phi = (vals: Float64Array[]) => dot(u, f.ref(...inputs.map((x, i) => ({ shape: x.shape, data: vals[i] }))).data);
  return wrt.map((k) => {
    const g = new Float64Array(values[k].length);
    for (let j = 0; j < g.length; j++) {
      const saved = values[k][j];
      values[k][j] = saved + eps;
      const plus = phi(values);
      values[k][j] = saved - eps;
      const minus = phi(values);
      values[k][j] = saved;
      g[j] = (plus - minus) / (2 * eps);
    }
    return g;
  });
}

async function read(t: Tensor | null, size: number): Promise<Float64Array> {
  return t ? Float64Array.from(await t.toArray()) : new Float64Array(size);
}

/**
 * First order: the forward matches the reference, and the GPU VJP with a random cotangent matches central
 * differences of ⟨u, ref(x)⟩ in float64.
 */
export async function gradcheck(f: CheckedFunction, inputs: readonly CheckInput[], opts: GradcheckOptions = {}): Promise<GradcheckReport> {
  const { device, values, wrt, refOut, next } = setup(f, inputs, opts);
  const check = new Checker(opts.atol ?? 2e-4, opts.rtol ?? 2e-3);
  const u = randomVector(refOut.data.length, next);
  const tensors = upload(inputs, values, wrt, device);
  const uT = raw.tensor(Float32Array.from(u), [...refOut.shape], 'f32', device);
  const owned: (Tensor | null)[] = [...tensors, uT];
  try {
    const y = enableGrad(() => f.gpu(...tensors));
    owned.push(y);
    check.compare('forward', await read(y, 0), refOut.data);
    const grads = grad(
      y,
      wrt.map((k) => tensors[k]),
      { gradOutputs: uT, allowUnused: true },
    );
    owned.push(...grads);
    const want = referenceGradient(f, inputs, values, wrt, u, opts.eps ?? 1e-6);
    for (let i = 0; i < wrt.length; i++) check.compare(`d/d input ${wrt[i]}`, await read(grads[i], want[i].length), want[i]);
  } finally {
    for (const t of owned) t?.dispose();
  }
  return check.report(opts.raise ?? true, 'gradcheck');
}

/**
 * Second order through the recorded backward: g = ∂⟨u, f(x)⟩/∂x with createGraph, then one more VJP with
 * directions v gives H·v (w.r.t. x) and J·v (w.r.t. u), compared with central differences of the reference
 * gradient and of the reference output; and the Hessian symmetry ⟨v₂, H v⟩ = ⟨v, H v₂⟩ on the GPU.
 */
export async function gradgradcheck(f: CheckedFunction, inputs: readonly CheckInput[], opts: GradcheckOptions = {}): Promise<GradcheckReport> {
  const { device, values, wrt, refOut, next } = setup(f, inputs, opts);
  const check = new Checker(opts.atol ?? 2e-3, opts.rtol ?? 1e-2);
  const eps = opts.eps ?? 1e-5;
  const h = opts.outerEps ?? 1e-4;
  const u = randomVector(refOut.data.length, next);
  const v = wrt.map((k) => randomVector(values[k].length, next));
  const v2 = wrt.map((k) => randomVector(values[k].length, next));
  const tensors = upload(inputs, values, wrt, device);
  const uT = requiresGrad(raw.tensor(Float32Array.from(u), [...refOut.shape], 'f32', device));
  const vT = v.map((d, i) => raw.tensor(Float32Array.from(d), [...inputs[wrt[i]].shape], 'f32', device));
  const v2T = v2.map((d, i) => raw.tensor(Float32Array.from(d), [...inputs[wrt[i]].shape], 'f32', device));
  const owned: (Tensor | null)[] = [...tensors, uT, ...vT, ...v2T];
  try {
    const x = wrt.map((k) => tensors[k]);
    const y = enableGrad(() => f.gpu(...tensors));
    owned.push(y);
    const g = grad(y, x, { gradOutputs: uT, createGraph: true, allowUnused: true });
    owned.push(...g);
    const live = g.flatMap((gi, i) => (gi?.requiresGrad ? [i] : []));
    const second = (dirs: Tensor[]) =>
      live.length
        ? grad(
            live.map((i) => g[i]!),
            [...x, uT],
            { gradOutputs: live.map((i) => dirs[i]), retainGraph: true, allowUnused: true },
          )
        : [];
    const hv = second(vT);
    const hv2 = second(v2T);
    owned.push(...hv, ...hv2);
    const at = (i: number, list: (Tensor | null)[]) => list[i] ?? null;

    // Reference: H·v from central differences of the (central-difference) gradient along v, J·v likewise.
    const shifted = (sign: number) => values.map((d, k) => (wrt.includes(k) ? d.map((e, j) => e + sign * h * v[wrt.indexOf(k)][j]) : d));
    const gPlus = referenceGradient(f, inputs, shifted(1), wrt, u, eps);
    const gMinus = referenceGradient(f, inputs, shifted(-1), wrt, u, eps);
    const yOf = (vals: Float64Array[]) => f.ref(...inputs.map((xi, i) => ({ shape: xi.shape, data: vals[i] }))).data;
    const yPlus = yOf(shifted(1));
    const yMinus = yOf(shifted(-1));
    for (let i = 0; i < wrt.length; i++) {
      const want = gPlus[i].map((p, j) => (p - gMinus[i][j]) / (2 * h));
      check.compare(`Hv w.r.t. input ${wrt[i]}`, await read(at(i, hv), want.length), want);
    }
    check.compare(
      'Jv (w.r.t. the cotangent)',
      await read(at(wrt.length, hv), u.length),
      yPlus.map((p, j) => (p - yMinus[j]) / (2 * h)),
    );

    let vHv2 = 0;
    let v2Hv = 0;
    for (let i = 0; i < wrt.length; i++) {
      vHv2 += dot(v[i], await read(at(i, hv2), v[i].length));
      v2Hv += dot(v2[i], await read(at(i, hv), v2[i].length));
    }
    check.compare('symmetry <v2, Hv> = <v, Hv2>', [v2Hv], [vHv2]);
  } finally {
    for (const t of owned) t?.dispose();
  }
  return check.report(opts.raise ?? true, 'gradgradcheck');
}
