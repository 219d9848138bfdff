/** @file Helpers shared by the meta-learners: detached loss gradients, plain GD steps, scalar readback, option checks. */
import * as raw from '@metagrad/tensor';
import { InvalidArgumentError, type Tensor } from '@metagrad/tensor';
import { detach, enableGrad, grad, requiresGrad } from '@metagrad/autograd';
import { type ParamTree, disposeTree, fromLeaves, leaves } from '@metagrad/models';

/**
 * ∇loss(u) as a fresh tree without a graph. The loss runs on fresh leaf handles (sharing u's storage), so u
 * itself never joins a graph and the one built here is freed before returning.
 */
export function lossGradient<P extends ParamTree>(loss: (params: P) => Tensor, u: P): P {
  const ls = leaves(u).map((t) => requiresGrad(detach(t)));
  try {
    const value = enableGrad(() => loss(fromLeaves(u, ls)));
    const gs = grad(value, ls, { allowUnused: true });
    value.dispose();
    return fromLeaves(u, gs.map((g, i) => g ?? raw.zeros(ls[i].shape, 'f32', ls[i].device)));
  } finally {
    for (const t of ls) t.dispose();
  }
}

/** u − lr·g leafwise with raw ops (no graph); a fresh tree. */
export function gdStep<P extends ParamTree>(u: P, g: ParamTree, lr: number): P {
  const gl = leaves(g);
  return fromLeaves(u, leaves(u).map((x, i) => {
    const s = raw.mulScalar(gl[i], -lr);
    const out = raw.add(x, s);
    s.dispose();
    return out;
  }));
}

/** a − b leafwise with raw ops; a fresh tree. */
export function subTrees<P extends ParamTree>(a: P, b: ParamTree): P {
  const bl = leaves(b);
  return fromLeaves(a, leaves(a).map((x, i) => raw.sub(x, bl[i])));
}

/** Fresh copies of every leaf (raw, no graph). */
export function cloneTree<P extends ParamTree>(a: P): P {
  return fromLeaves(a, leaves(a).map((x) => raw.mulScalar(x, 1)));
}

/** Reads a single-element tensor and disposes it. */
export async function readScalar(t: Tensor): Promise<number> {
  try {
    return await t.item();
  } finally {
    t.dispose();
  }
}

/** A loss evaluated on detached handles of u: a one-element tensor without a graph (the caller disposes it). */
export function lossValue<P extends ParamTree>(loss: (params: P) => Tensor, u: P): Tensor {
  const ls = leaves(u).map((t) => detach(t));
  try {
    const value = loss(fromLeaves(u, ls));
    const out = detach(value);
    value.dispose();
    return out;
  } finally {
    for (const t of ls) t.dispose();
  }
}

/** Evaluates a loss without recording anything and reads it back. */
export async function evalLoss<P extends ParamTree>(loss: (params: P) => Tensor, u: P): Promise<number> {
  return readScalar(lossValue(loss, u));
}

/** Σ_i ⟨a_i, b_i⟩ over the leaves, with one readback. */
export async function dotTrees(a: ParamTree, b: ParamTree): Promise<number> {
  const al = leaves(a);
  const bl = leaves(b);
  const parts = al.map((x, i) => {
    const p = raw.mul(x, bl[i]);
    const total = raw.sum(p);
    const s = raw.reshape(total, [1]);
    p.dispose();
    total.dispose();
    return s;
  });
  const joined = parts.length === 1 ? parts[0] : raw.concat(parts, 0);
  try {
    const values = (await joined.toArray()) as Float32Array;
    let s = 0;
    for (const v of values) s += v;
    return s;
  } finally {
    if (joined !== parts[0]) joined.dispose();
    for (const t of parts) t.dispose();
  }
}

export { disposeTree };

export function checkPositiveInt(where: string, name: string, v: number): void {
  if (!(Number.isInteger(v) && v >= 1)) throw new InvalidArgumentError(`${where}: ${name} must be a positive integer, got ${v}`);
}

export function checkPositive(where: string, name: string, v: number): void {
  if (!(v > 0 && Number.isFinite(v))) throw new InvalidArgumentError(`${where}: ${name} must be a positive finite number, got ${v}`);
}

export function checkNonNegative(where: string, name: string, v: number): void {
  if (!(v >= 0 && Number.isFinite(v))) throw new InvalidArgumentError(`${where}: ${name} must be a non-negative finite number, got ${v}`);
}
