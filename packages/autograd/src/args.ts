/** @file Argument checks of the autograd entry points (grad, backward, vjp, jvp, hvp, …): named errors, not TypeErrors. */
import { checkBoolean, checkOptions, describeValue, InvalidArgumentError, Tensor } from '@metagrad/tensor';

/** What a wrong argument was, for the message: its value and its JS type. */
function describeArg(v: unknown): string {
  if (typeof v === 'function') return `a function${v.name ? ` (${v.name})` : ''}`;
  if (v === null) return 'null';
  if (v instanceof Tensor) return `a Tensor`;
  return `${describeValue(v)} (${Array.isArray(v) ? 'array' : typeof v})`;
}

/**
 * Throws InvalidArgumentError unless `v` is a Tensor. A number or an array would otherwise fail as
 * "t.assertAlive is not a function" deep in the engine.
 */
export function checkTensorArg(op: string, what: string, v: unknown): Tensor {
  if (!(v instanceof Tensor)) throw new InvalidArgumentError(`${op}: ${what} must be a Tensor, got ${describeArg(v)}`);
  return v;
}

/**
 * A Tensor or an array of Tensors, as a list. A function here (the engine's tensor form reached with one) is said
 * plainly: functions go to the jax form, grad(f)(x).
 */
export function tensorList(op: string, what: string, v: unknown): Tensor[] {
  if (typeof v === 'function') {
    throw new InvalidArgumentError(
      `${op}: ${what} is a function; this form takes tensors computed from inputs marked with requiresGrad() ` +
        `(to differentiate a function use grad(f)(x), valueAndGrad(f)(x) or vjp(f, primals, cotangent))`,
    );
  }
  const list: unknown[] = Array.isArray(v) ? v : [v];
  list.forEach((t, i) => checkTensorArg(op, Array.isArray(v) ? `${what}[${i}]` : what, t));
  return list as Tensor[];
}

/** Throws InvalidArgumentError unless `f` is a function (vjp(f, …) called with a tensor first, say). */
export function checkFunctionArg(op: string, what: string, f: unknown): void {
  if (typeof f !== 'function') throw new InvalidArgumentError(`${op}: ${what} must be a function of tensors, got ${describeArg(f)}`);
}

/**
 * Checks an options object (known keys only, so { create_graph: true } is not silently ignored) and that the
 * named flags in it are booleans ('false' would be read as true).
 */
export function checkFlagOptions(op: string, options: unknown, known: readonly string[], flags: readonly string[]): Record<string, unknown> {
  checkOptions(op, options, known);
  const opts = (options ?? {}) as Record<string, unknown>;
  for (const f of flags) if (opts[f] !== undefined) checkBoolean(op, f, opts[f]);
  return opts;
}
