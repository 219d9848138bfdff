/** @file Reference movement/indexing ops: reshape, permute, expand, slice, pad, concat, flip, gather, scatterAdd, … */

import { IndexOutOfRangeError, InvalidArgumentError, ShapeError } from '../errors';
import { checkIntList, show } from './args';
import { type RefTensor, broadcastShapes, broadcastStrides, checkIndexData, checkShape, forEachOffset, normAxis, shapeStr, sizeOf, stridesOf } from './types';

/** Reshape with at most one −1. The reference copies (the GPU op shares storage; values are identical). */
export function reshape(x: RefTensor, shape: readonly number[]): RefTensor {
  checkIntList('reshape', 'shape', shape, ShapeError, -1);
  const n = x.data.length;
  const holes = shape.filter((d) => d === -1).length;
  const known = shape.filter((d) => d !== -1);
  checkShape(known, 'reshape target');
  const prod = sizeOf(known);
  let out: number[];
  if (holes > 1) throw new ShapeError(`reshape: more than one -1 in ${shapeStr(shape)}`);
  if (holes === 1) {
    if (prod === 0 || n % prod !== 0) throw new ShapeError(`reshape: cannot infer -1 reshaping ${shapeStr(x.shape)} to ${shapeStr(shape)}`);
    out = shape.map((d) => (d === -1 ? n / prod : d));
  } else out = [...shape];
  if (sizeOf(out) !== n) throw new ShapeError(`reshape: ${shapeStr(x.shape)} (${n} elements) cannot become ${shapeStr(shape)}`);
  return { shape: out, data: x.data.slice() };
}

/** out.shape[i] = x.shape[perm[i]]. */
export function permute(x: RefTensor, perm: readonly number[]): RefTensor {
  checkIntList('permute', 'perm', perm, ShapeError);
  const r = x.shape.length;
  if (perm.length !== r) throw new ShapeError(`permute: perm [${perm.join(', ')}] does not match shape ${shapeStr(x.shape)}`);
  const p = perm.map((a) => normAxis(a, r, 'permute axis'));
  if (new Set(p).size !== r) throw new ShapeError(`permute: [${perm.join(', ')}] is not a permutation for shape ${shapeStr(x.shape)}`);
  const st = stridesOf(x.shape);
  const shape = p.map((a) => x.shape[a]);
  const out = new Float64Array(x.data.length);
  forEachOffset(shape, [p.map((a) => st[a])], (i, o) => {
    out[i] = x.data[o[0]];
  });
  return { shape, data: out };
}

export function transpose(x: RefTensor, a: number, b: number): RefTensor {
  const r = x.shape.length;
  const perm = Array.from({ length: r }, (_, i) => i);
  const i = normAxis(a, r);
  const j = normAxis(b, r);
  [perm[i], perm[j]] = [perm[j], perm[i]];
  return permute(x, perm);
}

/** Broadcast copy to `shape` (new leading dims allowed; −1 keeps the existing size, as torch.expand). */
export function expand(x: RefTensor, shape: readonly number[]): RefTensor {
  checkIntList('expand', 'shape', shape, ShapeError, -1);
  const off = shape.length - x.shape.length;
  const target = shape.map((d, i) => (d === -1 && i >= off ? x.shape[i - off] : d));
  checkShape(target, 'expand target');
  let b: number[];
  try {
    b = broadcastShapes(x.shape, target);
  } catch {
    b = [];
  }
  if (off < 0 || b.length !== target.length || b.some((d, i) => d !== target[i])) {
    throw new ShapeError(`expand: cannot expand ${shapeStr(x.shape)} to ${shapeStr(shape)}`);
  }
  const out = new Float64Array(sizeOf(target));
  forEachOffset(target, [broadcastStrides(x.shape, target)], (i, o) => {
    out[i] = x.data[o[0]];
  });
  return { shape: target, data: out };
}

/**
 * Per-axis strided slice. starts/ends/steps may be shorter than the rank (missing axes are taken whole);
 * negative bounds count from the end and everything is clamped to [0, dim], as Python slicing with step > 0.
 */
export function slice(x: RefTensor, starts: readonly number[], ends: readonly number[], steps?: readonly number[]): RefTensor {
  checkIntList('slice', 'starts', starts, InvalidArgumentError);
  checkIntList('slice', 'ends', ends, InvalidArgumentError);
  if (steps !== undefined) checkIntList('slice', 'steps', steps, InvalidArgumentError, 1);
  const r = x.shape.length;
  if (starts.length > r || ends.length !== starts.length || (steps && steps.length !== starts.length)) {
    throw new ShapeError(`slice: starts [${starts.join(', ')}], ends [${ends.join(', ')}] do not fit shape ${shapeStr(x.shape)}`);
  }
  const st = stridesOf(x.shape);
  const begin: number[] = [];
  const step: number[] = [];
  const shape: number[] = [];
  for (let i = 0; i < r; i++) {
    const d = x.shape[i];
    const s = i < starts.length ? (steps?.[i] ?? 1) : 1;
    if (!Number.isInteger(s) || s <= 0) throw new InvalidArgumentError(`slice: steps must be positive integers, got ${s}`);
    const clamp = (v: number) => Math.min(d, Math.max(0, v < 0 ? v + d : v));
    const b = i < starts.length ? clamp(starts[i]) : 0;
    const e = i < starts.length ? clamp(ends[i]) : d;
    begin.push(b);
    step.push(s);
    shape.push(Math.max(0, Math.ceil((e - b) / s)));
  }
  const base = begin.reduce((p, b, i) => p + b * st[i], 0);
  const out = new Float64Array(sizeOf(shape));
  forEachOffset(shape, [st.map((v, i) => v * step[i])], (i, o) => {
    out[i] = x.data[base + o[0]];
  });
  return { shape, data: out };
}

/** Constant pad, one [before, after] pair per axis. Negative pads crop (as torch's F.pad). */
export function pad(x: RefTensor, pads: readonly (readonly [number, number])[], value = 0): RefTensor {
  if (typeof value !== 'number') throw new InvalidArgumentError(`pad: value must be a number, got ${show(value)}`);
  const r = x.shape.length;
  if (!Array.isArray(pads) || !pads.every((p) => Array.isArray(p) && p.length === 2 && Number.isInteger(p[0]) && Number.isInteger(p[1]))) {
    throw new InvalidArgumentError(`pad: pads must be [before, after] integer pairs, got ${JSON.stringify(pads)}`);
  }
  if (pads.length !== r) throw new ShapeError(`pad: ${pads.length} pad pairs for shape ${shapeStr(x.shape)}`);
  const shape = x.shape.map((d, i) => d + pads[i][0] + pads[i][1]);
  checkShape(shape, `pad of ${shapeStr(x.shape)} gives`);
  const st = stridesOf(x.shape);
  const out = new Float64Array(sizeOf(shape));
  const idx = new Array<number>(r).fill(0);
  for (let i = 0; i < out.length; i++) {
    let off = 0;
    let inside = true;
    let rem = i;
    for (let d = r - 1; d >= 0; d--) {
      idx[d] = rem % shape[d];
      rem = Math.floor(rem / shape[d]);
      const s = idx[d] - pads[d][0];
      if (s < 0 || s >= x.shape[d]) inside = false;
      off += s * st[d];
    }
    out[i] = inside ? x.data[off] : value;
  }
  return { shape, data: out };
}

export function concat(xs: readonly RefTensor[], axis: number): RefTensor {
  if (!Array.isArray(xs as unknown)) throw new InvalidArgumentError(`concat: xs must be an array of tensors, got ${show(xs)}`);
  xs.forEach((t, i) => {
    if (typeof t !== 'object' || t === null || !Array.isArray(t.shape)) throw new InvalidArgumentError(`concat: xs[${i}] must be a tensor, got ${show(t)}`);
  });
  if (xs.length === 0) throw new ShapeError('concat: no tensors');
  const r = xs[0].shape.length;
  const ax = normAxis(axis, r);
  for (const t of xs) {
    if (t.shape.length !== r || t.shape.some((d, i) => i !== ax && d !== xs[0].shape[i])) {
      throw new ShapeError(`concat on axis ${axis}: shapes ${xs.map((u) => shapeStr(u.shape)).join(', ')} do not agree`);
    }
  }
  const shape = [...xs[0].shape];
  shape[ax] = xs.reduce((p, t) => p + t.shape[ax], 0);
  const outer = sizeOf(shape.slice(0, ax));
  const inner = sizeOf(shape.slice(ax + 1));
  const out = new Float64Array(sizeOf(shape));
  let pos = 0;
  for (let o = 0; o < outer; o++) {
    for (const t of xs) {
      const chunk = t.shape[ax] * inner;
      out.set(t.data.subarray(o * chunk, (o + 1) * chunk), pos);
      pos += chunk;
    }
  }
  return { shape, data: out };
}

export function flip(x: RefTensor, axes: readonly number[]): RefTensor {
  const r = x.shape.length;
  if (!Array.isArray(axes as unknown)) throw new ShapeError(`flip: axes must be an array, got ${show(axes)}`);
  const ax = new Set(axes.map((a) => normAxis(a, r)));
  if (ax.size !== axes.length) throw new ShapeError(`flip: repeated axis in ${show(axes)} for shape ${shapeStr(x.shape)}`);
  const st = stridesOf(x.shape);
  const base = [...ax].reduce((p, a) => p + Math.max(0, x.shape[a] - 1) * st[a], 0);
  const out = new Float64Array(x.data.length);
  forEachOffset(x.shape, [st.map((s, i) => (ax.has(i) ? -s : s))], (i, o) => {
    out[i] = x.data[base + o[0]];
  });
  return { shape: [...x.shape], data: out };
}

/** An index value outside [0, size) (negative ones included, as torch) is an IndexOutOfRangeError naming `op`. */
function checkIndexRange(v: number, size: number, op: string): void {
  if (v < 0 || v >= size) throw new IndexOutOfRangeError(`${op}: index ${v} is out of range [0, ${size})`, op);
}

/** Validates torch.gather/scatter_add's shape rule: index.size(d) ≤ ref.size(d) for every d ≠ axis. */
function checkIndexShape(op: string, index: RefTensor, ref: RefTensor, ax: number, alsoAxis: boolean): void {
  const bad = index.shape.length !== ref.shape.length || index.shape.some((d, i) => (alsoAxis || i !== ax) && d > ref.shape[i]);
  if (bad) throw new ShapeError(`${op}: index shape ${shapeStr(index.shape)} does not fit ${shapeStr(ref.shape)} on axis ${ax}`);
}

/** torch.gather: out[..i..] = x[..index[..i..]..] on `axis`; out has index's shape. */
export function gather(x: RefTensor, axis: number, index: RefTensor): RefTensor {
  const ax = normAxis(axis, Math.max(1, x.shape.length));
  checkIndexShape('gather', index, x, ax, false);
  checkIndexData(index, 'gather index');
  const st = stridesOf(x.shape);
  const out = new Float64Array(index.data.length);
  forEachOffset(index.shape, [st.map((s, i) => (i === ax ? 0 : s))], (i, o) => {
    const k = index.data[i];
    checkIndexRange(k, x.shape[ax], 'gather');
    out[i] = x.data[o[0] + k * st[ax]];
  });
  return { shape: [...index.shape], data: out };
}

/** Selects whole slices along `axis` by a 1-D (or 0-D) i32 index. */
export function indexSelect(x: RefTensor, axis: number, index: RefTensor): RefTensor {
  if (index.shape.length > 1) throw new ShapeError(`indexSelect: index must be 1-D, got ${shapeStr(index.shape)}`);
  const ax = normAxis(axis, x.shape.length);
  checkIndexData(index, 'indexSelect index');
  const n = index.data.length;
  const outer = sizeOf(x.shape.slice(0, ax));
  const inner = sizeOf(x.shape.slice(ax + 1));
  const d = x.shape[ax];
  const shape = [...x.shape];
  shape[ax] = n;
  const out = new Float64Array(sizeOf(shape));
  for (let j = 0; j < n; j++) checkIndexRange(index.data[j], d, 'indexSelect');
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < n; j++) {
      const src = (o * d + index.data[j]) * inner;
      out.set(x.data.subarray(src, src + inner), (o * n + j) * inner);
    }
  }
  return { shape, data: out };
}

/**
 * torch.Tensor.scatter_add, out of place: out = x; out[..index[..i..]..] += src[..i..] on `axis`, where i
 * ranges over index's shape (src may be larger; only its index-shaped corner is read).
 */
export function scatterAdd(x: RefTensor, axis: number, index: RefTensor, src: RefTensor): RefTensor {
  const ax = normAxis(axis, Math.max(1, x.shape.length));
  checkIndexShape('scatterAdd', index, x, ax, false);
  checkIndexShape('scatterAdd (src)', index, src, ax, true);
  checkIndexData(index, 'scatterAdd index');
  const st = stridesOf(x.shape);
  const ss = stridesOf(src.shape);
  const out = x.data.slice();
  forEachOffset(index.shape, [st.map((s, i) => (i === ax ? 0 : s)), ss], (i, o) => {
    const k = index.data[i];
    checkIndexRange(k, x.shape[ax], 'scatterAdd');
    out[o[0] + k * st[ax]] += src.data[o[1]];
  });
  return { shape: [...x.shape], data: out };
}

/** f32 one-hot rows appended as a new last axis. */
export function oneHot(index: RefTensor, numClasses: number): RefTensor {
  if (!Number.isInteger(numClasses) || numClasses <= 0) throw new InvalidArgumentError(`oneHot: numClasses must be a positive integer, got ${numClasses}`);
  checkIndexData(index, 'oneHot index');
  const out = new Float64Array(index.data.length * numClasses);
  index.data.forEach((k, i) => {
    checkIndexRange(k, numClasses, 'oneHot');
    out[i * numClasses + k] = 1;
  });
  return { shape: [...index.shape, numClasses], data: out };
}
