/** @file Differentiable movement ops (reshape, permute, expand, slice, pad, concat, flip, gather, scatter) and VJPs. */
import * as raw from '@metagrad/tensor/raw';
import type { Shape, Tensor } from '@metagrad/tensor';
import type { RuleTable } from '../prims';
import { record } from '../record';
import { sumToShape } from './reduce';

// Index-valued results: nothing to differentiate.
export { oneHot } from '@metagrad/tensor/raw';

export type MovementPrim = 'reshape' | 'permute' | 'expand' | 'slice' | 'pad' | 'concat' | 'flip' | 'gather' | 'indexSelect' | 'scatterAdd';

const normAxis = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

export function reshape(x: Tensor, shape: Shape): Tensor {
  return record('reshape', [x], raw.reshape(x, shape), {});
}

export function permute(x: Tensor, perm: readonly number[]): Tensor {
  const y = raw.permute(x, perm);
  return record('permute', [x], y, { perm: perm.map((a) => normAxis(a, x.rank)) });
}

export function transpose(x: Tensor, a: number, b: number): Tensor {
  // The perm is built here, so the axes are checked here (transpose(x, 0.5, 1) or (x, 5, 0) made a bogus perm).
  raw.checkTensors('transpose', { x });
  const perm = Array.from({ length: x.rank }, (_, i) => i);
  const [i, j] = [a, b].map((axis) => raw.normalizeAxes('transpose', [axis], x.rank)[0]);
  [perm[i], perm[j]] = [perm[j], perm[i]];
  return permute(x, perm);
}

export function expand(x: Tensor, shape: Shape): Tensor {
  return record('expand', [x], raw.expand(x, shape), {});
}

/**
 * Per-axis strided slice with Python bounds. The normalised starts and steps are recorded, which is all
 * the VJP needs to place the gradient back.
 */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[], steps?: readonly number[]): Tensor {
  const y = raw.slice(x, starts, ends, steps);
  const begin = x.shape.map((d, i) => {
    if (i >= starts.length) return 0;
    const s = starts[i];
    return Math.min(d, Math.max(0, s < 0 ? s + d : s));
  });
  const stride = x.shape.map((_, i) => (i < starts.length ? (steps?.[i] ?? 1) : 1));
  return record('slice', [x], y, { starts: begin, steps: stride });
}

export function pad(x: Tensor, pads: readonly (readonly [number, number])[], value = 0): Tensor {
  const y = raw.pad(x, pads, value);
  return record('pad', [x], y, { pads: pads.map(([b, a]) => [b, a] as [number, number]) });
}

export function concat(xs: readonly Tensor[], axis: number): Tensor {
  const y = raw.concat(xs, axis);
  return record('concat', xs, y, { axis: normAxis(axis, y.rank) });
}

export function flip(x: Tensor, axes: readonly number[]): Tensor {
  return record('flip', [x], raw.flip(x, axes), { axes: axes.map((a) => normAxis(a, x.rank)) });
}

export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  const y = raw.gather(x, axis, index);
  return record('gather', [x, null], y, { axis: normAxis(axis, Math.max(1, x.rank)) }, () => [index]);
}

export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  const y = raw.indexSelect(x, axis, index);
  return record('indexSelect', [x, null], y, { axis: normAxis(axis, x.rank) }, () => [index]);
}

export function scatterAdd(x: Tensor, axis: number, index: Tensor, src: Tensor): Tensor {
  const y = raw.scatterAdd(x, axis, index, src);
  return record('scatterAdd', [x, null, src], y, { axis: normAxis(axis, Math.max(1, x.rank)) }, () => [index]);
}

/**
 * Pads with zeros where `pads` is positive and crops where it is negative, using only non-negative pads
 * and unit-step slices (so it is itself differentiable with the rules below).
 */
export function padOrCrop(x: Tensor, pads: readonly (readonly [number, number])[]): Tensor {
  // Public, and it slices with bounds it derives from `pads`: check them as raw.pad would.
  raw.checkTensors('padOrCrop', { x });
  if (!Array.isArray(pads) || !pads.every((p) => Array.isArray(p) && p.length === 2 && Number.isInteger(p[0]) && Number.isInteger(p[1]))) {
    throw new raw.InvalidArgumentError(
      `padOrCrop: pads must be [before, after] integer pairs, got ${raw.describeValue(pads)} for shape [${x.shape.join(', ')}]`,
    );
  }
  if (pads.length !== x.rank) throw new raw.ShapeError(`padOrCrop: ${pads.length} pad pairs for shape [${x.shape.join(', ')}]`);
  let cur = x;
  if (pads.some(([b, a]) => b < 0 || a < 0)) {
    cur = slice(
      x,
      pads.map(([b]) => Math.max(0, -b)),
      x.shape.map((d, i) => d - Math.max(0, -pads[i][1])),
    );
  }
  if (pads.some(([b, a]) => b > 0 || a > 0)) {
    const grown = pad(
      cur,
      pads.map(([b, a]) => [Math.max(0, b), Math.max(0, a)] as [number, number]),
    );
    if (cur !== x) cur.dispose();
    cur = grown;
  }
  return cur;
}

/** The gradient of a slice: every kept element back at begin + k·step, zeros elsewhere. */
function unslice(gy: Tensor, inputShape: Shape, begin: readonly number[], steps: readonly number[]): Tensor {
  let g = gy;
  for (let axis = 0; axis < inputShape.length; axis++) {
    const step = steps[axis];
    const n = g.shape[axis];
    if (step > 1 && n > 0) {
      // Interleave step−1 zeros after each element: [.., n, ..] → [.., n, step, ..] → [.., n·step, ..].
      const withStep = [...g.shape.slice(0, axis + 1), 1, ...g.shape.slice(axis + 1)];
      const pads = withStep.map((_, i) => (i === axis + 1 ? [0, step - 1] : [0, 0]) as [number, number]);
      const spread = pad(reshape(g, withStep), pads);
      const merged = [...g.shape];
      merged[axis] = n * step;
      g = reshape(spread, merged);
    }
  }
  const pads = inputShape.map((d, i) => {
    const before = g.shape[i] === 0 ? d : begin[i];
    return [before, d - before - g.shape[i]] as [number, number];
  });
  return padOrCrop(g, pads);
}

function inversePermutation(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

/** The i32 index of indexSelect stretched to the output's shape, so scatterAdd can place gradients. */
function indexAlong(index: Tensor, axis: number, outShape: Shape): Tensor {
  const shape = outShape.map((d, i) => (i === axis ? d : 1));
  return raw.expand(raw.reshape(index, shape), outShape);
}

function zerosLike(shape: Shape, like: Tensor): Tensor {
  return raw.zeros(shape, 'f32', like.device);
}

export const movementRules: RuleTable<MovementPrim> = {
  reshape: ({ gy, inputShapes: [shape] }) => [reshape(gy, shape)],
  permute: ({ gy, attrs }) => [permute(gy, inversePermutation(attrs.perm))],
  expand: ({ gy, inputShapes: [shape] }) => [sumToShape(gy, shape)],
  slice: ({ gy, attrs, inputShapes: [shape] }) => [unslice(gy, shape, attrs.starts, attrs.steps)],
  pad: ({ gy, attrs }) => [
    padOrCrop(
      gy,
      attrs.pads.map(([b, a]) => [-b, -a] as [number, number]),
    ),
  ],
  concat: ({ gy, attrs, inputShapes, needs }) => {
    let offset = 0;
    return inputShapes.map((shape, k) => {
      const start = offset;
      offset += shape[attrs.axis];
      if (!needs[k]) return null;
      const starts = shape.map((_, i) => (i === attrs.axis ? start : 0));
      const ends = shape.map((d, i) => (i === attrs.axis ? start + d : d));
      return slice(gy, starts, ends);
    });
  },
  flip: ({ gy, attrs }) => [flip(gy, attrs.axes)],
  gather: ({ gy, saved: [index], attrs, inputShapes: [shape] }) => [scatterAdd(zerosLike(shape, gy), attrs.axis, index, gy), null],
  indexSelect: ({ gy, saved: [index], attrs, inputShapes: [shape] }) => [
    scatterAdd(zerosLike(shape, gy), attrs.axis, indexAlong(index, attrs.axis, gy.shape), gy),
    null,
  ],
  scatterAdd: ({ gy, saved: [index], attrs, inputShapes: [, , srcShape], needs }) => {
    let gsrc: Tensor | null = null;
    if (needs[2]) {
      gsrc = gather(gy, attrs.axis, index);
      // torch allows src larger than index: the entries no index points at get no gradient.
      if (gsrc.shape.some((d, i) => d !== srcShape[i]))
        gsrc = pad(
          gsrc,
          srcShape.map((d, i) => [0, d - gsrc!.shape[i]] as [number, number]),
        );
    }
    return [needs[0] ? gy : null, null, gsrc];
  },
};
