/** @file Functional transforms over the tape: vjp, jvp (double-VJP), hvp, a reusable HVP operator, jacobian. */
import * as raw from '@metagrad/tensor/raw';
import { ShapeError, type Tensor } from '@metagrad/tensor';
import { checkFlagOptions, checkFunctionArg, checkTensorArg } from './args';
import { detach, grad, requiresGrad } from './engine';
import { enableGrad } from './mode';

type Fn = (...inputs: Tensor[]) => Tensor;

/**
 * Inputs that gradients can flow to: tensors that already require grad are used as they are (so results stay
 * connected to an outer graph under createGraph), others get a fresh leaf handle that the caller must dispose.
 */
function trackedInputs(primals: readonly Tensor[]): { inputs: Tensor[]; owned: Tensor[] } {
  const owned: Tensor[] = [];
  const inputs = primals.map((p) => {
    if (p.requiresGrad) return p;
    const leaf = requiresGrad(detach(p));
    owned.push(leaf);
    return leaf;
  });
  return { inputs, owned };
}

function zerosLike(t: Tensor): Tensor {
  return raw.zeros(t.shape, 'f32', t.device);
}

function checkSameShapes(op: string, a: readonly Tensor[], b: readonly Tensor[], what: string): void {
  if (a.length !== b.length || a.some((t, i) => t.shape.length !== b[i].shape.length || t.shape.some((d, k) => d !== b[i].shape[k]))) {
    throw new ShapeError(
      `${op}: ${what} [${b.map((t) => `[${t.shape.join(', ')}]`).join(', ')}] must match [${a.map((t) => `[${t.shape.join(', ')}]`).join(', ')}]`,
    );
  }
}

/** The output's graph is kept only when the caller wants to differentiate further. */
function finishOutput(output: Tensor, createGraph: boolean): Tensor {
  if (createGraph) return output;
  const plain = detach(output);
  output.dispose();
  return plain;
}

/** Throws InvalidArgumentError unless `v` is an array of Tensors (vjp(f, x, …) with a bare tensor, say). */
function checkTensorArray(op: string, what: string, v: unknown): void {
  if (!Array.isArray(v)) {
    const got = v instanceof raw.Tensor ? 'a single Tensor (wrap it: [x])' : `${raw.describeValue(v)} (${v === null ? 'null' : typeof v})`;
    throw new raw.InvalidArgumentError(`${op}: ${what} must be an array of Tensors, got ${got}`);
  }
  v.forEach((t, i) => checkTensorArg(op, `${what}[${i}]`, t));
}

/** The functional transforms' options: only createGraph, a boolean. */
function functionalOptions(op: string, options: unknown): FunctionalOptions {
  return checkFlagOptions(op, options, ['createGraph'], ['createGraph']) as FunctionalOptions;
}

export interface FunctionalOptions {
  /** Keep the results differentiable (higher-order use). */
  createGraph?: boolean;
}

/** f(primals) and the cotangent pulled back to every primal: Jᵀ·cotangent (zeros for unused primals). */
export function vjp(f: Fn, primals: readonly Tensor[], cotangent: Tensor, options: FunctionalOptions = {}): { output: Tensor; grads: Tensor[] } {
  checkFunctionArg('vjp', 'f', f);
  checkTensorArray('vjp', 'primals', primals);
  checkTensorArg('vjp', 'cotangent', cotangent);
  const createGraph = functionalOptions('vjp', options).createGraph ?? false;
  const { inputs, owned } = trackedInputs(primals);
  let output: Tensor | undefined;
  try {
    output = checkTensorArg(
      'vjp',
      'the result of f',
      enableGrad(() => f(...inputs)),
    );
    const grads = grad(output, inputs, { gradOutputs: cotangent, createGraph, allowUnused: true });
    const result = { output: finishOutput(output, createGraph), grads: grads.map((g, i) => g ?? zerosLike(inputs[i])) };
    output = undefined; // handed over
    return result;
  } finally {
    // On a throw (a cotangent of the wrong shape, a failing backward) the output and its graph are freed too.
    output?.dispose();
    for (const t of owned) t.dispose();
  }
}

/**
 * f(primals) and the directional derivative J·tangents, by the double-VJP trick: g(u) = Jᵀu is linear in u,
 * so the VJP of g with cotangent t is J·t.
 */
export function jvp(f: Fn, primals: readonly Tensor[], tangents: readonly Tensor[], options: FunctionalOptions = {}): { output: Tensor; jvp: Tensor } {
  checkFunctionArg('jvp', 'f', f);
  checkTensorArray('jvp', 'primals', primals);
  checkTensorArray('jvp', 'tangents', tangents);
  checkSameShapes('jvp', primals, tangents, 'tangents');
  const createGraph = functionalOptions('jvp', options).createGraph ?? false;
  const { inputs, owned } = trackedInputs(primals);
  const temporaries: Tensor[] = [];
  let output: Tensor | undefined;
  try {
    output = checkTensorArg(
      'jvp',
      'the result of f',
      enableGrad(() => f(...inputs)),
    );
    const u = requiresGrad(raw.zeros(output.shape, 'f32', output.device));
    temporaries.push(u);
    const pulled = grad(output, inputs, { gradOutputs: u, createGraph: true, allowUnused: true });
    const outs: Tensor[] = [];
    const cots: Tensor[] = [];
    pulled.forEach((g, i) => {
      if (!g) return;
      temporaries.push(g);
      if (g.requiresGrad) {
        outs.push(g);
        cots.push(tangents[i]);
      }
    });
    const [jv] = outs.length ? grad(outs, [u], { gradOutputs: cots, createGraph, allowUnused: true }) : [null];
    const result = { output: finishOutput(output, createGraph), jvp: jv ?? zerosLike(output) };
    output = undefined; // handed over
    return result;
  } finally {
    output?.dispose();
    for (const t of [...temporaries, ...owned]) t.dispose();
  }
}

/**
 * Hessian-vector products of a scalar function, reverse-over-reverse. The gradient graph is built once
 * (createGraph) and serves any number of `apply(v)` calls, as CG, Neumann and adjoint loops need;
 * `dispose()` frees it.
 */
export class HvpOperator {
  /** f(params), with its graph. */
  readonly value: Tensor;
  /** ∇f(params), recorded (null for parameters f does not use). */
  readonly gradients: (Tensor | null)[];
  private readonly inputs: Tensor[];
  private readonly owned: Tensor[];
  private disposed = false;

  constructor(f: Fn, params: readonly Tensor[]) {
    checkFunctionArg('HvpOperator', 'f', f);
    checkTensorArray('HvpOperator', 'params', params);
    const { inputs, owned } = trackedInputs(params);
    this.inputs = inputs;
    this.owned = owned;
    let value: Tensor | undefined;
    try {
      value = checkTensorArg(
        'HvpOperator',
        'the result of f',
        enableGrad(() => f(...inputs)),
      );
      if (value.size !== 1) throw new ShapeError(`HvpOperator: f must return a single element, got [${value.shape.join(', ')}]`);
      this.gradients = grad(value, inputs, { createGraph: true, allowUnused: true });
      this.value = value;
    } catch (e) {
      value?.dispose();
      for (const t of owned) t.dispose();
      throw e;
    }
  }

  /** H·v for v shaped like the parameters; with createGraph the products stay differentiable. */
  apply(v: readonly Tensor[], options: FunctionalOptions = {}): Tensor[] {
    if (this.disposed) throw new Error('HvpOperator.apply() after dispose()');
    checkTensorArray('HvpOperator.apply', 'v', v);
    const createGraph = functionalOptions('HvpOperator.apply', options).createGraph ?? false;
    checkSameShapes('HvpOperator.apply', this.inputs, v, 'vectors');
    const outs: Tensor[] = [];
    const cots: Tensor[] = [];
    this.gradients.forEach((g, i) => {
      // A gradient that carries no graph is constant: its Hessian block is zero.
      if (g?.requiresGrad) {
        outs.push(g);
        cots.push(v[i]);
      }
    });
    if (!outs.length) return this.inputs.map(zerosLike);
    const hv = grad(outs, this.inputs, { gradOutputs: cots, retainGraph: true, createGraph, allowUnused: true });
    return hv.map((h, i) => h ?? zerosLike(this.inputs[i]));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const g of this.gradients) g?.dispose();
    this.value.dispose();
    for (const t of this.owned) t.dispose();
  }
}

/** One Hessian-vector product of a scalar f at params (builds and frees an HvpOperator). */
export function hvp(f: Fn, params: readonly Tensor[], v: readonly Tensor[], options: FunctionalOptions = {}): Tensor[] {
  // Checked before the operator records f, so a bad v or option costs no forward pass.
  checkFunctionArg('hvp', 'f', f);
  checkTensorArray('hvp', 'params', params);
  checkTensorArray('hvp', 'v', v);
  functionalOptions('hvp', options);
  const op = new HvpOperator(f, params);
  try {
    return op.apply(v, options);
  } finally {
    op.dispose();
  }
}

/** The full Jacobian [...f(x).shape, ...x.shape], one VJP per output element: for small functions and tests. */
export function jacobian(f: (x: Tensor) => Tensor, x: Tensor): Tensor {
  checkFunctionArg('jacobian', 'f', f);
  checkTensorArg('jacobian', 'x', x);
  const { inputs, owned } = trackedInputs([x]);
  const input = inputs[0];
  let output: Tensor;
  try {
    output = checkTensorArg(
      'jacobian',
      'the result of f',
      enableGrad(() => f(input)),
    );
  } catch (e) {
    for (const t of owned) t.dispose();
    throw e;
  }
  const rows: Tensor[] = [];
  try {
    for (let i = 0; i < output.size; i++) {
      const basis = new Float32Array(output.size);
      basis[i] = 1;
      const e = raw.tensor(basis, output.shape, 'f32', output.device);
      const [g] = grad(output, [input], { gradOutputs: e, retainGraph: true, allowUnused: true });
      e.dispose();
      const row = g ?? zerosLike(input);
      rows.push(raw.reshape(row, [1, input.size]));
      row.dispose();
    }
    const stacked = rows.length ? raw.concat(rows, 0) : raw.zeros([0, input.size], 'f32', input.device);
    const result = raw.reshape(stacked, [...output.shape, ...input.shape]);
    stacked.dispose();
    return result;
  } finally {
    for (const t of [...rows, output, ...owned]) t.dispose();
  }
}
