/**
 * @file Function transforms beside the torch-style tape API: jax-style `grad(f)` and `valueAndGrad(f)` (with
 * `argnums`, over tensors or parameter trees), and the public `grad` that takes either form. The engine is
 * synchronous, so the transformed functions are too: `grad(f)(x)` returns the gradient, not a promise.
 */
import { describeValue, InvalidArgumentError, ShapeError, Tensor, tidy, zeros } from '@metagrad/tensor';
import { checkFlagOptions } from './args';
import { detach, grad as gradOfTensors, requiresGrad, type GradOptions } from './engine';
import { share } from './graph';
import { enableGrad } from './mode';

/**
 * A call of `grad`/`valueAndGrad` with the wrong kind of argument (a tensor where the function goes, a function
 * where output tensors go, inputs passed to `grad(f, …)` instead of to the function it returns). The message names
 * the two forms: jax style `grad(f)(...args)` and torch style `grad(outputs, inputs)`.
 */
export class GradFormError extends InvalidArgumentError {
  override name = 'GradFormError';
}

/** A tensor, or an array or plain object of trees (the shape of @metagrad/models' ParamTree). */
export type TensorTree = Tensor | readonly TensorTree[] | { readonly [key: string]: TensorTree };

/** Which positional arguments a transform differentiates. */
export type Argnums = number | readonly number[];

export interface TransformOptions<N extends Argnums = Argnums> {
  /**
   * The argument(s) to differentiate (default 0). A number gives that argument's gradient (a tensor, or a tree of
   * the argument's structure); an array gives an array of them, in the same order. The other arguments are constants.
   */
  argnums?: N;
  /**
   * Keep the gradient (and value) differentiable. Default: true when the call runs inside another transform's
   * function (so `grad(grad(f))` composes) or when a tensor among the arguments already requires grad (an outer
   * tape is tracking it: gradcheck, a torch-style `grad(…, [x])` of the result), else false. Pass `true` when the
   * outer dependence is through a closure, `false` for a plain first-order step on tracked parameters.
   */
  createGraph?: boolean;
}

/**
 * The gradient type for arguments `A` and `argnums` N: the argument's own type, or a tuple of them; N left at the
 * whole `Argnums` (options without argnums) means argument 0.
 */
export type GradOf<A extends readonly unknown[], N> = Argnums extends N
  ? A[0]
  : N extends number
    ? A[N]
    : { -readonly [K in keyof N]: N[K] extends number ? A[N[K]] : never };

/** A function returning one single-element tensor (a loss). */
export type ScalarFn<A extends unknown[]> = (...args: A) => Tensor;

const FORMS =
  'jax style: grad(f)(...args) or grad(f, { argnums })(...args), f returning a single-element tensor; ' +
  'torch style: grad(outputs, inputs), outputs computed from inputs marked with requiresGrad()';

/** How deep in transformed functions the current call is (a nested transform keeps its graph: grad(grad(f))). */
let depth = 0;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);

function what(v: unknown): string {
  if (typeof v === 'function') return `a function${v.name ? ` (${v.name})` : ''}`;
  if (v instanceof Tensor) return `a Tensor of shape [${v.shape.join(', ')}]`;
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v === null) return 'null';
  return `${describeValue(v)} (${typeof v})`;
}

/** Leaves of a tensor tree, depth first (arrays by index, records by insertion order), with a path for errors. */
function leavesOf(op: string, tree: unknown, path: string, out: Tensor[]): void {
  if (tree instanceof Tensor) out.push(tree);
  else if (Array.isArray(tree)) tree.forEach((t, i) => leavesOf(op, t, `${path}[${i}]`, out));
  else if (isPlainObject(tree)) for (const [k, t] of Object.entries(tree)) leavesOf(op, t, `${path}.${k}`, out);
  else {
    throw new InvalidArgumentError(
      `${op}: ${path} is ${what(tree)}; the differentiated arguments must be tensors or arrays/objects of tensors ` +
        `(pass constants as other arguments and choose the differentiated ones with argnums)`,
    );
  }
}

/** Whether a tensor anywhere in the arguments (trees included, other values ignored) requires grad. */
function anyRequiresGrad(v: unknown): boolean {
  if (v instanceof Tensor) return v.requiresGrad;
  if (Array.isArray(v)) return v.some(anyRequiresGrad);
  if (isPlainObject(v)) return Object.values(v).some(anyRequiresGrad);
  return false;
}

/** The tree `tree` with its leaves replaced, in leavesOf order, by `next()`. */
function rebuild(tree: unknown, next: () => Tensor): unknown {
  if (tree instanceof Tensor) return next();
  if (Array.isArray(tree)) return tree.map((t) => rebuild(t, next));
  return Object.fromEntries(Object.entries(tree as Record<string, unknown>).map(([k, t]) => [k, rebuild(t, next)]));
}

function checkTransformCall(op: string, f: unknown, options: unknown): { argnums: number[]; single: boolean; createGraph?: boolean } {
  if (typeof f === 'function' && f.constructor?.name === 'AsyncFunction') {
    throw new GradFormError(
      `${op}(f): f is an async function; the engine is synchronous, so f must compute its result without await ` +
        `(read values back after ${op}(f)(…) returns)`,
    );
  }
  if (typeof f !== 'function') {
    const hint =
      f instanceof Tensor || Array.isArray(f)
        ? op === 'grad'
          ? 'grad() with tensors needs the inputs too: grad(outputs, inputs)'
          : `${op}() differentiates a function; for tensors already computed use grad(outputs, inputs)`
        : `${op}() takes a function`;
    throw new GradFormError(`${op}(): got ${what(f)}. ${hint}. The forms: ${FORMS}`);
  }
  if (options instanceof Tensor || Array.isArray(options)) {
    throw new GradFormError(
      `${op}(f, …): the second argument is ${what(options)}, but ${op}(f) returns a function: call it with the inputs, ` +
        `${op}(f)(x) (not ${op}(f, x)); to choose which arguments to differentiate pass { argnums }. The forms: ${FORMS}`,
    );
  }
  const opts = checkFlagOptions(`${op}()`, options, ['argnums', 'createGraph'], ['createGraph']) as TransformOptions;
  const a = opts.argnums ?? 0;
  const list = typeof a === 'number' ? [a] : Array.isArray(a) ? [...a] : null;
  if (!list || list.length === 0 || list.some((i) => !Number.isInteger(i) || i < 0) || new Set(list).size !== list.length) {
    throw new InvalidArgumentError(`${op}(): argnums must be a non-negative integer or a non-empty array of distinct ones, got ${describeValue(a)}`);
  }
  return { argnums: list, single: typeof a === 'number', createGraph: opts.createGraph };
}

interface Evaluated {
  value: Tensor;
  grads: unknown[];
}

/** f(...args) and its gradient with respect to args[argnums], inside one tidy scope (f's intermediates are freed). */
function evaluate(op: string, f: (...args: unknown[]) => unknown, args: unknown[], argnums: number[], createGraphOption: boolean | undefined): Evaluated {
  for (const i of argnums) {
    if (i >= args.length) {
      throw new GradFormError(`${op}(f)(…): argnums asks for argument ${i}, but the function was called with ${args.length} argument(s)`);
    }
  }
  const perArg = argnums.map((i) => {
    const leaves: Tensor[] = [];
    leavesOf(`${op}(f)(…)`, args[i], `argument ${i}`, leaves);
    for (const t of leaves) t.assertAlive(`${op}(f)(…)`);
    return leaves;
  });
  const createGraph = createGraphOption ?? (depth > 0 || anyRequiresGrad(args));
  depth++;
  try {
    return tidy(() => {
      // Tensors that already require grad are used as they are (results stay connected to an outer graph); the
      // others get a fresh leaf handle, freed with the scope.
      const tracked = perArg.map((leaves) => leaves.map((t) => (t.requiresGrad ? t : requiresGrad(detach(t)))));
      const callArgs = args.slice();
      argnums.forEach((i, k) => {
        let j = 0;
        callArgs[i] = rebuild(args[i], () => tracked[k][j++]);
      });
      const out = enableGrad(() => f(...callArgs));
      if (out instanceof Promise) {
        out.catch(() => {}); // its rejection, if any, is not this call's to report
        throw new GradFormError(
          `${op}(f): f returned a Promise; the engine is synchronous, so f must compute its result without await (read values back after ${op}(f)(…) returns)`,
        );
      }
      if (!(out instanceof Tensor)) {
        throw new GradFormError(`${op}(f): f must return a single-element Tensor (a loss), got ${what(out)}`);
      }
      if (out.size !== 1) {
        throw new ShapeError(
          `${op}(f): f returned shape [${out.shape.join(', ')}]; ${op} needs a single-element output (reduce it, e.g. with sum or mean), ` +
            `or use vjp(f, primals, cotangent) for a vector-Jacobian product`,
        );
      }
      const flat = tracked.flat();
      let gs: (Tensor | null)[];
      if (out.requiresGrad) {
        const opts: GradOptions = { createGraph, retainGraph: createGraph, allowUnused: true };
        gs = gradOfTensors(out, flat, opts);
      } else {
        gs = flat.map(() => null); // f does not depend on the differentiated arguments
      }
      let n = 0;
      const grads = argnums.map((i) =>
        rebuild(args[i], () => {
          const g = gs[n];
          const like = flat[n++];
          return g ?? zeros(like.shape, 'f32', like.device);
        }),
      );
      // A fresh handle either way: f may return one of its arguments or a closure tensor, which is not ours to free.
      return { value: createGraph ? share(out) : detach(out), grads };
    });
  } finally {
    depth--;
  }
}

/** jax.grad: a function of the same arguments returning the gradient of f (a single-element tensor) with respect to args[argnums]. */
function gradTransform(f: unknown, options: unknown): (...args: unknown[]) => unknown {
  const { argnums, single, createGraph } = checkTransformCall('grad', f, options);
  const fn = f as (...args: unknown[]) => unknown;
  return (...args: unknown[]) => {
    const { value, grads } = evaluate('grad', fn, args, argnums, createGraph);
    value.dispose();
    return single ? grads[0] : grads;
  };
}

/**
 * Gradients, in two forms.
 * - **jax style** `grad(f, { argnums, createGraph })`: returns a function with f's arguments that returns the
 *   gradient of f (which must return a single-element tensor) with respect to argument `argnums` (default 0): a
 *   tensor for a tensor argument, a tree of the same structure for a parameter tree, an array for an array of
 *   argnums. Unused arguments get zeros. Synchronous, like the engine; f's intermediates are freed.
 * - **torch style** `grad(outputs, inputs, options)`: gradients of already computed outputs with respect to
 *   inputs marked with requiresGrad() (like torch.autograd.grad), as new tensors the caller owns.
 * Anything else (a tensor without inputs, `grad(f, x)`) is a GradFormError naming both forms.
 */
export function grad<A extends unknown[]>(f: ScalarFn<A>): (...args: A) => A[0];
export function grad<A extends unknown[], const N extends Argnums>(f: ScalarFn<A>, options: TransformOptions<N>): (...args: A) => GradOf<A, N>;
export function grad(outputs: Tensor | readonly Tensor[], inputs: Tensor | readonly Tensor[], options?: GradOptions & { allowUnused?: false }): Tensor[];
export function grad(outputs: Tensor | readonly Tensor[], inputs: Tensor | readonly Tensor[], options: GradOptions): (Tensor | null)[];
export function grad(a: unknown, b?: unknown, c?: unknown): unknown {
  if (typeof a === 'function') {
    if (c !== undefined) throw new GradFormError(`grad(f, …): takes at most (f, options), got a third argument. The forms: ${FORMS}`);
    return gradTransform(a, b);
  }
  if (a instanceof Tensor || Array.isArray(a)) {
    if (b === undefined) {
      throw new GradFormError(`grad(outputs): the inputs are missing: grad(outputs, inputs), or pass a function: grad(f)(x). The forms: ${FORMS}`);
    }
    if (typeof b === 'function') {
      throw new GradFormError(`grad(outputs, inputs): inputs is ${what(b)}; the function goes first in the jax form: grad(f)(x). The forms: ${FORMS}`);
    }
    return gradOfTensors(a as Tensor | readonly Tensor[], b as Tensor | readonly Tensor[], c as GradOptions);
  }
  throw new GradFormError(`grad(): the first argument is ${what(a)}, neither a function nor output tensor(s). The forms: ${FORMS}`);
}

/** What `valueAndGrad(f)(...args)` returns: f's value and its gradient (see grad). */
export interface ValueAndGrad<G> {
  value: Tensor;
  grad: G;
}

/**
 * jax.value_and_grad (tf.valueAndGrad): like `grad(f, options)`, but the returned function gives `{ value, grad }`,
 * f's value (detached unless createGraph) beside the gradient, from one forward pass.
 */
export function valueAndGrad<A extends unknown[]>(f: ScalarFn<A>): (...args: A) => ValueAndGrad<A[0]>;
export function valueAndGrad<A extends unknown[], const N extends Argnums>(
  f: ScalarFn<A>,
  options: TransformOptions<N>,
): (...args: A) => ValueAndGrad<GradOf<A, N>>;
export function valueAndGrad<A extends unknown[], const N extends Argnums>(
  f: ScalarFn<A>,
  options?: TransformOptions<N>,
): (...args: A) => ValueAndGrad<GradOf<A, N>> {
  const { argnums, single, createGraph } = checkTransformCall('valueAndGrad', f, options);
  const fn = f as (...args: unknown[]) => unknown;
  return (...args: A) => {
    const { value, grads } = evaluate('valueAndGrad', fn, args, argnums, createGraph);
    return { value, grad: (single ? grads[0] : grads) as GradOf<A, N> };
  };
}
