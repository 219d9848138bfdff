/** @file Helpers shared by the meta-learners: detached loss gradients, plain GD steps, readbacks in scopes, option checks. */
import * as raw from '@metagrad/tensor/raw';
import { InvalidArgumentError, type Tensor, scope, tidy } from '@metagrad/tensor';
import { detach, enableGrad, grad, noGrad } from '@metagrad/autograd';
import { type ParamTree, tree } from '@metagrad/models';

/** grad(value, u) as a tree, zeros for leaves the value does not use. */
export function gradTree<P extends ParamTree>(value: Tensor, u: P, createGraph = false): P {
  const ls = tree.leaves(u);
  const gs = grad(value, ls, { createGraph, allowUnused: true });
  return tree.fromLeaves(
    u,
    gs.map((g, i) => g ?? raw.zeros(ls[i].shape, 'f32', ls[i].device)),
  );
}

/**
 * L = loss(u) and ∇L(u), both without a graph (L a detached one-element view: no dispatch). The loss runs on fresh
 * leaf handles sharing u's storage, so u itself never joins a graph and the one built here is freed before returning.
 */
export function valueAndGradient<P extends ParamTree>(loss: (params: P) => Tensor, u: P): { value: Tensor; gradient: P } {
  return tidy(() => {
    const leaf = tree.requiresGrad(u);
    const L = enableGrad(() => loss(leaf));
    return { value: detach(L), gradient: gradTree(L, leaf) };
  });
}

/** ∇loss(u) as a fresh tree without a graph. */
export function lossGradient<P extends ParamTree>(loss: (params: P) => Tensor, u: P): P {
  return tidy(() => valueAndGradient(loss, u).gradient);
}

/** u − lr·g, graph-free (θ may require grad; the step never records); a fresh tree. */
export const gdStep = <P extends ParamTree>(u: P, g: ParamTree, lr: number): P => noGrad(() => tree.axpy(-lr, g as P, u));

/** The per-step losses as one tensor [T] (one concat; the caller owns it and the parts stay the caller's). */
export function stackLosses(losses: readonly Tensor[]): Tensor {
  return tidy(() =>
    raw.concat(
      losses.map((l) => raw.reshape(l, [1])),
      0,
    ),
  );
}

/** The per-step losses read back as numbers (one concat, one readback); the losses stay the caller's. */
export function readLosses(losses: readonly Tensor[]): Promise<number[]> {
  return scope(async () => Array.from(await stackLosses(losses).toArray()));
}

/** A loss evaluated on detached handles of u: a one-element tensor without a graph (the caller disposes it). */
export function lossValue<P extends ParamTree>(loss: (params: P) => Tensor, u: P): Tensor {
  return tidy(() => detach(loss(tree.detach(u))));
}

/** Evaluates a loss without recording anything and reads it back. */
export function evalLoss<P extends ParamTree>(loss: (params: P) => Tensor, u: P): Promise<number> {
  return scope(() => lossValue(loss, u).item());
}

/** Σ_i ⟨a_i, b_i⟩ over the leaves, with one readback. */
export function dotTrees(a: ParamTree, b: ParamTree): Promise<number> {
  return scope(() => noGrad(() => tree.dot(a, b)).item());
}

export function checkPositiveInt(where: string, name: string, v: number): void {
  if (!(Number.isInteger(v) && v >= 1)) throw new InvalidArgumentError(`${where}: ${name} must be a positive integer, got ${v}`);
}

export function checkPositive(where: string, name: string, v: number): void {
  if (!(v > 0 && Number.isFinite(v))) throw new InvalidArgumentError(`${where}: ${name} must be a positive finite number, got ${v}`);
}

export function checkNonNegative(where: string, name: string, v: number): void {
  if (!(v >= 0 && Number.isFinite(v))) throw new InvalidArgumentError(`${where}: ${name} must be a non-negative finite number, got ${v}`);
}
