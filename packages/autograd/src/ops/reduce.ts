/** @file Differentiable reductions (sum, mean, max, min, logsumexp) and the softmax family, with their VJPs. */
import * as raw from '@metagrad/tensor/raw';
import type { Shape, Tensor } from '@metagrad/tensor';
import type { PrimAttrs, RuleTable, VjpContext } from '../prims';
import { record } from '../record';
import { div, exp, mul, mulScalar, sub } from './elementwise';
import { expand, reshape } from './movement';

// argmax returns indices: nothing to differentiate.
export { argmax } from '@metagrad/tensor/raw';

export type ReducePrim = 'sum' | 'mean' | 'dot' | 'max' | 'min' | 'logsumexp' | 'softmax' | 'logSoftmax';
type AxesPrim = 'sum' | 'mean' | 'max' | 'min' | 'logsumexp';
type AxesArg = number | readonly number[] | undefined;

function axesAttrs(op: string, x: Tensor, axes: AxesArg, keepDims: boolean): PrimAttrs['sum'] {
  return { axes: raw.normalizeAxes(op, axes, x.rank), keepDims };
}

/** The reduced shape with the reduced axes kept as size 1 (what gradients broadcast back from). */
function keptShape(inputShape: Shape, axes: readonly number[]): number[] {
  return inputShape.map((d, i) => (axes.includes(i) ? 1 : d));
}

function axesReduction(prim: AxesPrim, saves: 'none' | 'xy') {
  const forward = raw[prim] as (x: Tensor, axes?: AxesArg, keepDims?: boolean) => Tensor;
  return (x: Tensor, axes?: AxesArg, keepDims = false): Tensor => {
    const y = forward(x, axes, keepDims);
    return record(prim, [x], y, axesAttrs(prim, x, axes, keepDims), () => (saves === 'xy' ? [x, y] : []));
  };
}

export const sum = axesReduction('sum', 'none');
export const mean = axesReduction('mean', 'none');
export const max = axesReduction('max', 'xy');
export const min = axesReduction('min', 'xy');
export const logsumexp = axesReduction('logsumexp', 'xy');

/** Σ x·y over all elements of two same-shape tensors (0-d), one fused dispatch; VJP (gy·y, gy·x). */
export function dot(x: Tensor, y: Tensor): Tensor {
  return record('dot', [x, y], raw.dot(x, y), {}, () => [x, y]);
}

export function softmax(x: Tensor, axis: number): Tensor {
  const y = raw.softmax(x, axis);
  return record('softmax', [x], y, { axis }, () => [y]);
}

export function logSoftmax(x: Tensor, axis: number): Tensor {
  const y = raw.logSoftmax(x, axis);
  return record('logSoftmax', [x], y, { axis }, () => [y]);
}

/**
 * Sums a broadcast gradient back to `shape` (leading extra dims and stretched size-1 dims), as every
 * broadcasting VJP needs. Returns `g` itself when nothing was broadcast.
 */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (g.shape.length === shape.length && g.shape.every((d, i) => d === shape[i])) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  if (axes.length === 0) return reshape(g, shape);
  const reduced = sum(g, axes, true);
  const out = reshape(reduced, shape);
  reduced.dispose();
  return out;
}

/** gy reshaped so that it broadcasts against the reduction's input. */
function broadcastable(gy: Tensor, inputShape: Shape, attrs: PrimAttrs['sum']): Tensor {
  return attrs.keepDims ? gy : reshape(gy, keptShape(inputShape, attrs.axes));
}

function countOf(inputShape: Shape, axes: readonly number[]): number {
  return axes.reduce((n, a) => n * inputShape[a], 1);
}

/** Max and min share their rule: ties share the gradient evenly (torch.amax/amin). */
function extremumRule<P extends 'max' | 'min'>({ gy, saved: [x, y], attrs, inputShapes: [shape] }: VjpContext<P>): Tensor[] {
  const yKept = broadcastable(y, shape, attrs);
  const mask = raw.eq(x, yKept);
  const count = raw.sum(mask, attrs.axes, true);
  return [mul(div(broadcastable(gy, shape, attrs), count), mask)];
}

export const reduceRules: RuleTable<ReducePrim> = {
  sum: ({ gy, attrs, inputShapes: [shape] }) => [expand(broadcastable(gy, shape, attrs), shape)],
  mean: ({ gy, attrs, inputShapes: [shape] }) => [expand(mulScalar(broadcastable(gy, shape, attrs), 1 / countOf(shape, attrs.axes)), shape)],
  dot: ({ gy, saved: [x, y], needs }) => [needs[0] ? mul(y, gy) : null, needs[1] ? mul(x, gy) : null],
  max: extremumRule,
  min: extremumRule,
  logsumexp: ({ gy, saved: [x, y], attrs, inputShapes: [shape] }) => [mul(broadcastable(gy, shape, attrs), exp(sub(x, broadcastable(y, shape, attrs))))],
  softmax: ({ gy, saved: [y], attrs }) => [mul(y, sub(gy, sum(mul(gy, y), [attrs.axis], true)))],
  logSoftmax: ({ gy, saved: [y], attrs }) => [sub(gy, mul(exp(y), sum(gy, [attrs.axis], true)))],
};
