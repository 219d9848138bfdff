/**
 * @file Function transforms beside the torch-style tape API: jax-style `grad(f)` and `valueAndGrad(f)` (with
 * `argnums`, over tensors or parameter trees, and `hasAux` for an f that returns `[value, aux]`), and the public
 * `grad` that takes either form. The engine is synchronous, so the transformed functions are too: `grad(f)(x)`
 * returns the gradient, not a promise.
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
  /** Left out or false: f returns the loss alone. For an f that returns `[value, aux]` see AuxTransformOptions. */
  hasAux?: false;
}

/** The options of `grad(f, …)` / `valueAndGrad(f, …)` for an f that returns `[value, aux]` (jax's has_aux). */
export interface AuxTransformOptions<N extends Argnums = Argnums> extends Omit<TransformOptions<N>, 'hasAux'> {
  /**
   * f returns a pair `[value, aux]`: `value` the single-element tensor that is differentiated, `aux` anything else f
   * computed (predictions, metrics, new state), returned beside the gradient without being differentiated. Tensors
   * in aux (found in arrays, plain objects and Maps, as `tidy` finds them) come back as new handles the caller owns,
   * detached unless the graph is kept (createGraph, as for the value); other values as they are. The literal `true`:
   * the result's type depends on it.
   */
  hasAux: true;
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

/**
 * A function returning `[value, aux]` for `{ hasAux: true }`: a single-element tensor (the loss) and auxiliary data
 * of any type X. A function declared apart needs its return type written as a tuple (`: [Tensor, Aux]` or
 * `as const`), else TypeScript reads the array literal as `(Tensor | Aux)[]`; an inline one is read as the pair.
 */
export type AuxFn<A extends unknown[], X> = (...args: A) => readonly [Tensor, X];

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

/**
 * aux with each tensor replaced by a new handle the caller owns (sharing the node when the graph is kept, else
 * detached), walking what `tidy` walks (arrays, plain objects, Maps); other values are returned as they are. A
 * tensor held directly by another object (a class instance) would be freed with f's intermediates: refused.
 */
function auxOut(op: string, v: unknown, path: string, keepGraph: boolean): unknown {
  if (v instanceof Tensor) {
    v.assertAlive(`${op}(f, { hasAux: true }): ${path}`);
    return keepGraph ? share(v) : detach(v);
  }
  if (Array.isArray(v)) return v.map((t, i) => auxOut(op, t, `${path}[${i}]`, keepGraph));
  if (v instanceof Map) return new Map([...v].map(([k, t]) => [k, auxOut(op, t, `${path}.get(${describeValue(k)})`, keepGraph)]));
  if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, t]) => [k, auxOut(op, t, `${path}.${k}`, keepGraph)]));
  if (typeof v === 'object' && v !== null && !ArrayBuffer.isView(v)) {
    const held = Object.entries(v).find(([, t]) => t instanceof Tensor);
    if (held) {
      throw new GradFormError(
        `${op}(f, { hasAux: true }): ${path}.${held[0]} is a Tensor inside a ${v.constructor?.name ?? 'non-plain object'}; ` +
          `tensors in aux must sit in arrays, plain objects or Maps (others would be freed with f's intermediates)`,
      );
    }
  }
  return v;
}

function checkTransformCall(op: string, f: unknown, options: unknown): { argnums: number[]; single: boolean; createGraph?: boolean; hasAux: boolean } {
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
  const opts = checkFlagOptions(`${op}()`, options, ['argnums', 'createGraph', 'hasAux'], ['createGraph', 'hasAux']) as TransformOptions | AuxTransformOptions;
  const a = opts.argnums ?? 0;
  const list = typeof a === 'number' ? [a] : Array.isArray(a) ? [...a] : null;
  if (!list || list.length === 0 || list.some((i) => !Number.isInteger(i) || i < 0) || new Set(list).size !== list.length) {
    throw new InvalidArgumentError(`${op}(): argnums must be a non-negative integer or a non-empty array of distinct ones, got ${describeValue(a)}`);
  }
  return { argnums: list, single: typeof a === 'number', createGraph: opts.createGraph, hasAux: opts.hasAux === true };
}

interface Evaluated {
  value: Tensor;
  grads: unknown[];
  /** f's aux (hasAux), its tensors new handles; undefined without hasAux. */
  aux: unknown;
}

/**
 * f(...args) and its gradient with respect to args[argnums], inside one tidy scope (f's intermediates are freed).
 * With hasAux f returns [value, aux]: value is differentiated, aux handed back (see auxOut).
 */
function evaluate(
  op: string,
  f: (...args: unknown[]) => unknown,
  args: unknown[],
  argnums: number[],
  createGraphOption: boolean | undefined,
  hasAux: boolean,
): Evaluated {
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
      const returned = enableGrad(() => f(...callArgs));
      if (returned instanceof Promise) {
        returned.catch(() => {}); // its rejection, if any, is not this call's to report
        throw new GradFormError(
          `${op}(f): f returned a Promise; the engine is synchronous, so f must compute its result without await (read values back after ${op}(f)(…) returns)`,
        );
      }
      let out: unknown = returned;
      if (hasAux) {
        const form = `${op}(f, { hasAux: true }): f must return [value, aux], value a single-element Tensor (a loss)`;
        if (!Array.isArray(returned) || returned.length !== 2) {
          const hint = returned instanceof Tensor ? `; return [loss, aux], or leave hasAux out for an f that returns the loss alone` : '';
          throw new GradFormError(`${form}, got ${what(returned)}${hint}`);
        }
        out = returned[0];
        if (!(out instanceof Tensor)) throw new GradFormError(`${form}, got an array of 2 whose first element is ${what(out)}`);
        if (out.size !== 1) {
          throw new ShapeError(
            `${form}: the value (f’s first element) has shape [${out.shape.join(', ')}]; it must be single-element (reduce it, e.g. with sum or mean)`,
          );
        }
      } else {
        if (!(out instanceof Tensor)) {
          const hint = Array.isArray(out) && out.length === 2 && out[0] instanceof Tensor ? `; if f returns [loss, aux], pass { hasAux: true }` : '';
          throw new GradFormError(`${op}(f): f must return a single-element Tensor (a loss), got ${what(out)}${hint}`);
        }
        if (out.size !== 1) {
          throw new ShapeError(
            `${op}(f): f returned shape [${out.shape.join(', ')}]; ${op} needs a single-element output (reduce it, e.g. with sum or mean), ` +
              `or use vjp(f, primals, cotangent) for a vector-Jacobian product`,
          );
        }
      }
      const loss = out as Tensor;
      // Checked before the backward pass, so a refused aux costs no gradient.
      const aux = hasAux ? auxOut(op, (returned as unknown[])[1], 'aux', createGraph) : undefined;
      const flat = tracked.flat();
      let gs: (Tensor | null)[];
      if (loss.requiresGrad) {
        const opts: GradOptions = { createGraph, retainGraph: createGraph, allowUnused: true };
        gs = gradOfTensors(loss, flat, opts);
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
      return { value: createGraph ? share(loss) : detach(loss), grads, aux };
    });
  } finally {
    depth--;
  }
}

/** jax.grad: a function of the same arguments returning the gradient of f (a single-element tensor) with respect to args[argnums]. */
function gradTransform(f: unknown, options: unknown): (...args: unknown[]) => unknown {
  const { argnums, single, createGraph, hasAux } = checkTransformCall('grad', f, options);
  const fn = f as (...args: unknown[]) => unknown;
  return (...args: unknown[]) => {
    const { value, grads, aux } = evaluate('grad', fn, args, argnums, createGraph, hasAux);
    value.dispose();
    const g = single ? grads[0] : grads;
    return hasAux ? [g, aux] : g;
  };
}

/**
 * Gradients, in two forms.
 * - **jax style** `grad(f, { argnums, createGraph, hasAux })`: returns a function with f's arguments that returns
 *   the gradient of f (which must return a single-element tensor) with respect to argument `argnums` (default 0): a
 *   tensor for a tensor argument, a tree of the same structure for a parameter tree, an array for an array of
 *   argnums. Unused arguments get zeros. Synchronous, like the engine; f's intermediates are freed. With
 *   `hasAux: true` f returns `[value, aux]` and the function returns `[gradient, aux]` (jax's `(grad, aux)`).
 * - **torch style** `grad(outputs, inputs, options)`: gradients of already computed outputs with respect to
 *   inputs marked with requiresGrad() (like torch.autograd.grad), as new tensors the caller owns.
 * Anything else (a tensor without inputs, `grad(f, x)`) is a GradFormError naming both forms.
 */
export function grad<A extends unknown[]>(f: ScalarFn<A>): (...args: A) => A[0];
export function grad<A extends unknown[], X, const N extends Argnums>(f: AuxFn<A, X>, options: AuxTransformOptions<N>): (...args: A) => [GradOf<A, N>, X];
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

/** What `valueAndGrad(f, { hasAux: true })(...args)` returns: f's value, its gradient and f's aux (see AuxTransformOptions). */
export interface ValueAndGradAux<G, X> extends ValueAndGrad<G> {
  aux: X;
}

/**
 * jax.value_and_grad (tf.valueAndGrad): like `grad(f, options)`, but the returned function gives `{ value, grad }`,
 * f's value (detached unless createGraph) beside the gradient, from one forward pass. With `hasAux: true` f returns
 * `[value, aux]` and the function gives `{ value, grad, aux }` (jax's `((value, aux), grad)`, named).
 */
export function valueAndGrad<A extends unknown[]>(f: ScalarFn<A>): (...args: A) => ValueAndGrad<A[0]>;
export function valueAndGrad<A extends unknown[], X, const N extends Argnums>(
  f: AuxFn<A, X>,
  options: AuxTransformOptions<N>,
): (...args: A) => ValueAndGradAux<GradOf<A, N>, X>;
export function valueAndGrad<A extends unknown[], const N extends Argnums>(
  f: ScalarFn<A>,
  options: TransformOptions<N>,
): (...args: A) => ValueAndGrad<GradOf<A, N>>;
export function valueAndGrad(f: unknown, options?: unknown): (...args: unknown[]) => ValueAndGrad<unknown> {
  const { argnums, single, createGraph, hasAux } = checkTransformCall('valueAndGrad', f, options);
  const fn = f as (...args: unknown[]) => unknown;
  return (...args: unknown[]) => {
    const { value, grads, aux } = evaluate('valueAndGrad', fn, args, argnums, createGraph, hasAux);
    const g = single ? grads[0] : grads;
    return hasAux ? { value, grad: g, aux } : { value, grad: g };
  };
}
