/** @file Raw reductions (sum, mean, max, min, argmax, logsumexp) and fused softmax / logSoftmax. */
import { grid1d, reduceKernel, REDUCE_WG, softmaxKernel, type ReduceLayout, type ReduceOpName } from '@metagrad/kernels-wgsl';
import type { Device } from '../device';
import { DTypeError, ShapeError } from '../errors';
import { assertSameDevice, sizeOf, tidy, type Tensor } from '../tensor';
import { pendingPrologue, productPrologue, type Prologue } from '../lazy/prologue';
import { empty, full } from './creation';
import { exp, sub } from './elementwise';
import { checkBoolean, checkTensors, describeValue, fmt, normalizeAxes, recordInto, UniformWriter } from './util';

/** Invocations a pass aims for: below this, long reductions are split into parts and finished by more passes. */
const TARGET_INVOCATIONS = 8192;
/** Smallest part worth its own invocation (a contiguous run per invocation is what llvmpipe likes). */
const MIN_PART = 1024;

type AnyReduce = Exclude<ReduceOpName, 'argmax'>;

function layoutFor(inner: number): ReduceLayout {
  return inner === 1 ? 'row' : inner % 4 === 0 ? 'col4' : 'col';
}

function groupsFor(layout: ReduceLayout, inner: number): number {
  return layout === 'row' ? 1 : layout === 'col4' ? inner / 4 : inner;
}

/** Splits R into P parts of C elements (C a multiple of 4 so row parts start on vec4 boundaries). */
function partsFor(outer: number, R: number, groups: number): { P: number; C: number } {
  const slots = outer * groups;
  if (R <= MIN_PART || slots >= TARGET_INVOCATIONS) return { P: 1, C: Math.max(R, 1) };
  const wanted = Math.min(Math.ceil(TARGET_INVOCATIONS / slots), Math.ceil(R / MIN_PART));
  const C = Math.ceil(Math.ceil(R / wanted) / 4) * 4;
  return { P: Math.ceil(R / C), C };
}

interface Pass {
  values: Tensor;
  indices?: Tensor;
}

/** The uniform words of a pass that reads through `pro`: the host's, padded to 16 bytes, then the program's. */
function withPrologue(u: Uint32Array, pro: Prologue | null): Uint32Array {
  return pro?.words.length ? Uint32Array.from([...u, ...pro.words]) : u;
}

/**
 * Reduces [outer, R, inner] over R until one part remains. Every pass but the first reads the previous
 * pass's partial results (partial sums, maxima, logsumexps and argmax pairs compose). With a prologue, the first
 * pass evaluates the pending input's expression at each load instead of reading `x.values` (lazy fusion).
 */
function reduceMiddle(
  device: Device,
  op: ReduceOpName,
  x: Pass,
  outer: number,
  R: number,
  inner: number,
  scale: number,
  prologue: Prologue | null = null,
): Pass {
  let cur = x;
  let r = R;
  let first = true;
  for (;;) {
    const layout = layoutFor(inner);
    const groups = groupsFor(layout, inner);
    const { P, C } = partsFor(outer, r, groups);
    const outShape = [outer * P * inner];
    const values = empty(outShape, 'f32', device);
    const indices = op === 'argmax' ? empty(outShape, 'i32', device) : undefined;
    if (values.size > 0) {
      const u = new UniformWriter()
        .u32(outer)
        .u32(r)
        .u32(inner)
        .u32(C)
        .u32(P)
        .u32(groups)
        .f32(P === 1 ? scale : 1)
        .finish();
      const grid = grid1d(Math.ceil((outer * P * groups) / REDUCE_WG));
      const pro = first ? prologue : null;
      if (pro) {
        const spec = reduceKernel({ op, layout, prologue: pro.program });
        pro.run((leaves, extra) => device.dispatch(spec, [...leaves, values.storage.buffer, ...extra], withPrologue(u, pro), grid));
      } else {
        const spec = reduceKernel({ op, layout, indexInput: op === 'argmax' && !first });
        const inputs = [cur.values.buffer, ...(op === 'argmax' && !first ? [cur.indices!.buffer] : [])];
        const outputs = [values.storage.buffer, ...(indices ? [indices.storage.buffer] : [])];
        device.dispatch(spec, [...inputs, ...outputs], u, grid);
      }
    }
    if (!first) {
      cur.values.dispose();
      cur.indices?.dispose();
    }
    cur = { values, indices };
    first = false;
    if (P === 1) return cur;
    r = P;
  }
}

function reduceShape(shape: readonly number[], axes: readonly number[], keepDims: boolean): number[] {
  return keepDims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

function checkFloat(op: string, x: Tensor): void {
  if (x.dtype !== 'f32') throw new DTypeError(`${op}: expects f32, got ${x.dtype} ${fmt(x.shape)}`);
}

/**
 * Reduces any set of axes without permuting: the innermost reduced block is reduced as [outer, R, inner],
 * then the next, each pass a contiguous-friendly kernel.
 */
function reduceAxes(op: AnyReduce, x: Tensor, axes: number | readonly number[] | undefined, keepDims: boolean, mean = false): Tensor {
  const name = mean ? 'mean' : op;
  checkTensors(name, { x });
  checkFloat(name, x);
  x.assertAlive(name);
  const ax = normalizeAxes(name, axes, x.rank);
  checkBoolean(name, 'keepDims', keepDims);
  const outShape = reduceShape(x.shape, ax, keepDims);
  const count = ax.reduce((p, a) => p * x.shape[a], 1);
  if ((op === 'max' || op === 'min') && count === 0 && sizeOf(outShape) > 0) {
    throw new ShapeError(`${op}: cannot reduce over a zero-size axis of shape ${fmt(x.shape)} (axes [${ax.join(', ')}])`);
  }
  const device = x.device;
  if (sizeOf(outShape) === 0) return empty(outShape, 'f32', device);
  // tidy: a throw from any pass frees the partial results made so far.
  return tidy(() => {
    let bl = refold(x.shape.map((size, i) => ({ size, reduced: ax.includes(i) })));
    if (!bl.some((b) => b.reduced)) bl = [...bl, { size: 1, reduced: true }]; // nothing to fold: one pass copies
    let cur: Tensor = x;
    // Lazy fusion: a pending input is evaluated inside the first pass (a prologue), never realised for it.
    let prologue = pendingPrologue(x);
    while (bl.some((b) => b.reduced)) {
      const at = bl.map((b) => b.reduced).lastIndexOf(true);
      const outer = bl.slice(0, at).reduce((p, b) => p * b.size, 1);
      const inner = bl.slice(at + 1).reduce((p, b) => p * b.size, 1);
      const isLast = !bl.slice(0, at).some((b) => b.reduced);
      const res = reduceMiddle(device, op, { values: cur }, outer, bl[at].size, inner, isLast && mean ? 1 / count : 1, prologue);
      prologue = null;
      if (cur !== x) cur.dispose();
      cur = res.values;
      bl = refold(bl.filter((_, i) => i !== at));
    }
    const out = cur.view(outShape);
    cur.dispose();
    return out;
  });
}

interface Block {
  size: number;
  reduced: boolean;
}

/** Folds dims into alternating kept/reduced blocks (size-1 dims dropped, neighbours of a kind merged). */
function refold(bl: readonly Block[]): Block[] {
  const out: Block[] = [];
  for (const b of bl) {
    const last = out[out.length - 1];
    if (b.size === 1) continue;
    if (last && last.reduced === b.reduced) last.size *= b.size;
    else out.push({ ...b });
  }
  return out;
}

export function sum(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  return reduceAxes('sum', x, axes, keepDims);
}

/**
 * Σ x·y over every element of two same-shape f32 tensors, as a 0-d tensor: the product is fused into the first
 * reduction pass (one dispatch where sum(mul(x, y)) takes two, for the dot products of parameter trees).
 */
export function dot(x: Tensor, y: Tensor): Tensor {
  checkTensors('dot', { x, y });
  checkFloat('dot', x);
  checkFloat('dot', y);
  assertSameDevice(x, y);
  if (x.shape.length !== y.shape.length || x.shape.some((d, i) => d !== y.shape[i])) {
    throw new ShapeError(`dot: shapes must be equal, got ${fmt(x.shape)} and ${fmt(y.shape)}`);
  }
  const device = x.device;
  const n = x.size;
  if (n === 0) return full([], 0, 'f32', device);
  const { P, C } = partsFor(1, n, 1);
  return tidy(() => {
    const partial = empty([P], 'f32', device);
    const u = new UniformWriter().u32(1).u32(n).u32(1).u32(C).u32(P).u32(1).f32(1).finish();
    const grid = grid1d(Math.ceil(P / REDUCE_WG));
    // Lazy fusion: a pending operand makes the product a prologue mul(x, y) evaluated from the leaves.
    const pro = productPrologue(x, y);
    if (pro) {
      const spec = reduceKernel({ op: 'sum', layout: 'row', prologue: pro.program });
      pro.run((leaves, extra) => device.dispatch(spec, [...leaves, partial.storage.buffer, ...extra], withPrologue(u, pro), grid));
    } else {
      device.dispatch(reduceKernel({ op: 'sum', layout: 'row', product: true }), [x.buffer, y.buffer, partial.storage.buffer], u, grid);
    }
    const total = P === 1 ? partial : reduceMiddle(device, 'sum', { values: partial }, 1, P, 1, 1).values;
    if (total !== partial) partial.dispose();
    const out = total.view([]);
    total.dispose();
    return out;
  });
}

/** Mean over an empty set is NaN (0/0), as torch. */
export function mean(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  return reduceAxes('sum', x, axes, keepDims, true);
}

/** NaN propagates (torch.amax). Reducing a zero-size axis throws ShapeError. */
export function max(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  return reduceAxes('max', x, axes, keepDims);
}

export function min(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  return reduceAxes('min', x, axes, keepDims);
}

/** log Σ exp over axes, stable (max subtracted); ±inf maxima pass through, empty sets give −inf. */
export function logsumexp(x: Tensor, axes?: number | readonly number[], keepDims = false): Tensor {
  return reduceAxes('logsumexp', x, axes, keepDims);
}

function around(op: string, x: Tensor, axis: number): { ax: number; outer: number; R: number; inner: number } {
  // One explicit axis: normalizeAxes would read a missing axis as "all axes" and silently use axis 0, where a
  // tfjs user expects the last axis and torch warns about an implicit dim.
  if (typeof axis !== 'number') throw new ShapeError(`${op}: needs one axis (an integer), got ${describeValue(axis)} for ${fmt(x.shape)}`);
  if (x.rank === 0) {
    if (axis !== 0 && axis !== -1) throw new ShapeError(`${op}: axis ${axis} is out of range for a 0-d tensor`);
    return { ax: 0, outer: 1, R: 1, inner: 1 };
  }
  const [ax] = normalizeAxes(op, axis, x.rank);
  return { ax, outer: sizeOf(x.shape.slice(0, ax)), R: x.shape[ax], inner: sizeOf(x.shape.slice(ax + 1)) };
}

/** Index (i32) of the first maximum along `axis`; a NaN counts as the maximum (first NaN wins), as torch. */
export function argmax(x: Tensor, axis: number, keepDims = false): Tensor {
  checkTensors('argmax', { x });
  checkFloat('argmax', x);
  x.assertAlive('argmax');
  const { ax, outer, R, inner } = around('argmax', x, axis);
  checkBoolean('argmax', 'keepDims', keepDims);
  if (R === 0) throw new ShapeError(`argmax: axis ${axis} of shape ${fmt(x.shape)} is empty`);
  const outShape = x.rank === 0 ? [] : reduceShape(x.shape, [ax], keepDims);
  if (sizeOf(outShape) === 0) return empty(outShape, 'i32', x.device);
  return tidy(() => {
    const res = reduceMiddle(x.device, 'argmax', { values: x }, outer, R, inner, 1);
    res.values.dispose();
    const out = res.indices!.view(outShape);
    res.indices!.dispose();
    return out;
  });
}

/** Softmax along `axis` (fused kernel; long rows with few slices go through logsumexp passes instead). */
export function softmax(x: Tensor, axis: number): Tensor {
  return softmaxImpl('softmax', x, axis, false);
}

/** x − logsumexp(x) along `axis`. */
export function logSoftmax(x: Tensor, axis: number): Tensor {
  return softmaxImpl('logSoftmax', x, axis, true);
}

function softmaxImpl(op: string, x: Tensor, axis: number, log: boolean): Tensor {
  checkTensors(op, { x });
  checkFloat(op, x);
  x.assertAlive(op);
  const { ax, outer, R, inner } = around(op, x, axis);
  const layout = layoutFor(inner);
  const groups = groupsFor(layout, inner);
  if (x.size === 0) return empty(x.shape, 'f32', x.device);
  if (outer * groups < TARGET_INVOCATIONS / 16 && R > 4 * MIN_PART) {
    // Too few slices to keep the threads busy with one serial scan each: use the split logsumexp passes.
    return tidy(() => {
      const lse = logsumexp(x, x.rank === 0 ? [] : [ax], true);
      const shifted = sub(x, lse);
      lse.dispose();
      if (log) return shifted;
      const out = exp(shifted);
      shifted.dispose();
      return out;
    });
  }
  const out = empty(x.shape, 'f32', x.device);
  const u = new UniformWriter().u32(outer).u32(R).u32(inner).u32(groups).finish();
  const grid = grid1d(Math.ceil((outer * groups) / REDUCE_WG));
  const pro = pendingPrologue(x);
  if (pro) {
    const spec = softmaxKernel({ log, layout, prologue: pro.program });
    return recordInto(out, () => pro.run((leaves, extra) => x.device.dispatch(spec, [...leaves, out.storage.buffer, ...extra], withPrologue(u, pro), grid)));
  }
  return recordInto(out, () => x.device.dispatch(softmaxKernel({ log, layout }), [x.buffer, out.storage.buffer], u, grid));
}
