/** @file Helpers shared by the online hypergradient estimators: fresh λ leaves, gradients with zeros for unused inputs, option checks. */
import { InvalidArgumentError, zeros, type Tensor } from '@metagrad/tensor';
import { detach, grad, noGrad, requiresGrad } from '@metagrad/autograd';
import { fromLeaves, leaves, mapTree, type ParamTree } from '@metagrad/models';
import type { HypergradInput } from './types';

/** Fresh leaves that require grad, sharing storage with `tree` (the caller's tensors stay untouched). */
export function gradLeaves<T extends ParamTree>(tree: T): T {
  return mapTree(tree, (t) => requiresGrad(detach(t)));
}

/**
 * d(output)/d(inputs) as a tree shaped like `like`; inputs the output does not reach get zeros (a hypergradient
 * with no path to λ is zero, not an error). With `createGraph` the result stays differentiable.
 */
export function gradTree<T extends ParamTree>(output: Tensor, inputs: T, createGraph = false): T {
  const list = leaves(inputs);
  if (!output.requiresGrad)
    return fromLeaves(
      inputs,
      list.map((t) => noGrad(() => zeros(t.shape, 'f32', t.device))),
    );
  const gs = grad(output, list, { allowUnused: true, createGraph, retainGraph: createGraph });
  return fromLeaves(
    inputs,
    gs.map((g, i) => g ?? noGrad(() => zeros(list[i].shape, 'f32', list[i].device))),
  );
}

export function checkPositiveInt(what: string, name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError(`${what}: ${name} must be an integer ≥ 1, got ${value}`);
}

export function checkFinite(what: string, name: string, value: number, test: (v: number) => boolean, rule: string): void {
  if (!Number.isFinite(value) || !test(value)) throw new InvalidArgumentError(`${what}: ${name} must be ${rule}, got ${value}`);
}

/** The inner step size every look-ahead style estimator needs (an absent one is refused like a bad one). */
export function checkInnerLr(what: string, innerLr: number | undefined): asserts innerLr is number {
  if (innerLr === undefined) throw new InvalidArgumentError(`${what}: the input needs innerLr (the inner step size α)`);
  checkFinite(what, 'innerLr', innerLr, (v) => v > 0, 'a finite number > 0');
}

/** The training batch of an estimator that needs one (`trainBatch` is optional in HypergradInput). */
export function requireTrainBatch<B>(what: string, input: Pick<HypergradInput<ParamTree, ParamTree, B>, 'trainBatch'>): B {
  if (input.trainBatch === undefined) throw new InvalidArgumentError(`${what}: the input needs trainBatch`);
  return input.trainBatch;
}
