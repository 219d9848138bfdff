/** @file Reference reductions: sum/mean/max/min over any axes, argmax, logsumexp, softmax, logSoftmax. */

import { ShapeError } from '../errors';
import { checkBoolean } from './args';
import { type RefTensor, forEachOffset, normAxes, normAxis, shapeStr, sizeOf, stridesOf } from './types';

interface ReducePlan {
  axes: number[];
  /** Output shape honoring keepDims. */
  outShape: number[];
  /** Strides into the output, indexed by input dim (0 on reduced dims), for the odometer walk. */
  outStrides: number[];
  outSize: number;
  /** Elements folded into each output. */
  count: number;
}

function plan(x: RefTensor, axes: number | readonly number[] | undefined, keepDims: boolean): ReducePlan {
  checkBoolean('reduce', 'keepDims', keepDims);
  const ax = normAxes(axes, x.shape.length);
  const reduced = new Set(ax);
  const kept = x.shape.map((d, i) => (reduced.has(i) ? 1 : d));
  const st = stridesOf(kept);
  const outStrides = x.shape.map((_, i) => (reduced.has(i) ? 0 : st[i]));
  const outShape = keepDims ? kept : x.shape.filter((_, i) => !reduced.has(i));
  const count = ax.reduce((p, a) => p * x.shape[a], 1);
  return { axes: ax, outShape, outStrides, outSize: sizeOf(kept), count };
}

/** Folds every input element into its output slot in row-major order (so "first" means lowest index). */
function fold(x: RefTensor, p: ReducePlan, init: number, step: (acc: number, v: number) => number): Float64Array {
  const acc = new Float64Array(p.outSize).fill(init);
  const xd = x.data;
  forEachOffset(x.shape, [p.outStrides], (i, o) => {
    acc[o[0]] = step(acc[o[0]], xd[i]);
  });
  return acc;
}

export function sum(x: RefTensor, axes?: number | readonly number[], keepDims = false): RefTensor {
  const p = plan(x, axes, keepDims);
  return { shape: p.outShape, data: fold(x, p, 0, (a, v) => a + v) };
}

/** Mean over an empty set is NaN (0/0), as torch. */
export function mean(x: RefTensor, axes?: number | readonly number[], keepDims = false): RefTensor {
  const p = plan(x, axes, keepDims);
  const s = fold(x, p, 0, (a, v) => a + v);
  return { shape: p.outShape, data: s.map((v) => v / p.count) };
}

function checkNonEmpty(x: RefTensor, p: ReducePlan, op: string): void {
  if (p.count === 0 && p.outSize > 0) {
    throw new ShapeError(`${op}: cannot reduce over a zero-size axis of shape ${shapeStr(x.shape)} (axes [${p.axes.join(', ')}])`);
  }
}

/** NaN propagates (torch.amax semantics): once the accumulator is NaN no comparison replaces it. */
export function max(x: RefTensor, axes?: number | readonly number[], keepDims = false): RefTensor {
  const p = plan(x, axes, keepDims);
  checkNonEmpty(x, p, 'max');
  return { shape: p.outShape, data: fold(x, p, -Infinity, (a, v) => (v > a || v !== v ? v : a)) };
}

export function min(x: RefTensor, axes?: number | readonly number[], keepDims = false): RefTensor {
  const p = plan(x, axes, keepDims);
  checkNonEmpty(x, p, 'min');
  return { shape: p.outShape, data: fold(x, p, Infinity, (a, v) => (v < a || v !== v ? v : a)) };
}

/** Views x as [outer, n, inner] around one axis: the layout of every single-axis op below. */
function around(x: RefTensor, axis: number): { ax: number; outer: number; n: number; inner: number } {
  const ax = normAxis(axis, Math.max(x.shape.length, 1));
  if (x.shape.length === 0) return { ax: 0, outer: 1, n: 1, inner: 1 };
  const outer = sizeOf(x.shape.slice(0, ax));
  const inner = sizeOf(x.shape.slice(ax + 1));
  return { ax, outer, n: x.shape[ax], inner };
}

/** Index (i32) of the first maximum along `axis`; a NaN counts as the maximum (first NaN wins), as torch. */
export function argmax(x: RefTensor, axis: number, keepDims = false): RefTensor {
  checkBoolean('argmax', 'keepDims', keepDims);
  const { ax, outer, n, inner } = around(x, axis);
  if (n === 0) throw new ShapeError(`argmax: axis ${axis} of shape ${shapeStr(x.shape)} is empty`);
  const data = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < inner; k++) {
      let best = x.data[o * n * inner + k];
      let bi = 0;
      for (let j = 1; j < n && best === best; j++) {
        const v = x.data[(o * n + j) * inner + k];
        if (v > best || v !== v) {
          best = v;
          bi = j;
        }
      }
      data[o * inner + k] = bi;
    }
  }
  const shape = x.shape.length === 0 ? [] : keepDims ? x.shape.map((d, i) => (i === ax ? 1 : d)) : x.shape.filter((_, i) => i !== ax);
  return { shape, data };
}

/**
 * log Σ exp(x) = m + log Σ exp(x − m) with m the max, so nothing overflows. When m is ±inf the result is m
 * (all −inf → −inf, any +inf → +inf), matching torch; NaN propagates. Empty reductions give −inf.
 */
export function logsumexp(x: RefTensor, axes?: number | readonly number[], keepDims = false): RefTensor {
  const p = plan(x, axes, keepDims);
  const m = fold(x, p, -Infinity, (a, v) => (v > a || v !== v ? v : a));
  const s = new Float64Array(p.outSize);
  const xd = x.data;
  forEachOffset(x.shape, [p.outStrides], (i, o) => {
    const mi = m[o[0]];
    if (Number.isFinite(mi)) s[o[0]] += Math.exp(xd[i] - mi);
  });
  const data = m.map((mi, i) => (Number.isFinite(mi) ? mi + Math.log(s[i]) : mi));
  return { shape: p.outShape, data };
}

/** Numerically stable softmax along one axis. A slice that is all −inf gives NaN, as torch. */
export function softmax(x: RefTensor, axis: number): RefTensor {
  const { outer, n, inner } = around(x, axis);
  const data = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < inner; k++) {
      const at = (j: number) => (o * n + j) * inner + k;
      let m = -Infinity;
      for (let j = 0; j < n; j++) m = Math.max(m, x.data[at(j)]);
      let s = 0;
      for (let j = 0; j < n; j++) s += data[at(j)] = Math.exp(x.data[at(j)] - m);
      for (let j = 0; j < n; j++) data[at(j)] /= s;
    }
  }
  return { shape: [...x.shape], data };
}

/** x − m − log Σ exp(x − m) along one axis. */
export function logSoftmax(x: RefTensor, axis: number): RefTensor {
  const { outer, n, inner } = around(x, axis);
  const data = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < inner; k++) {
      const at = (j: number) => (o * n + j) * inner + k;
      let m = -Infinity;
      for (let j = 0; j < n; j++) m = Math.max(m, x.data[at(j)]);
      let s = 0;
      for (let j = 0; j < n; j++) s += Math.exp(x.data[at(j)] - m);
      const lse = m + Math.log(s);
      for (let j = 0; j < n; j++) data[at(j)] = x.data[at(j)] - lse;
    }
  }
  return { shape: [...x.shape], data };
}
