/** @file Raw movement ops: reshape (free), permute/expand/slice/pad/flip via one strided copy, concat, gather, scatterAdd, oneHot. */
import {
  blockCopyKernel,
  gatherKernel,
  indexBoundsKernel,
  INDEX_OP_CODES,
  indexSelectKernel,
  linearDispatch,
  MAX_ELEMENTWISE_RANK,
  MOVEMENT_MAX_RANK,
  oneHotKernel,
  scatterAddKernel,
  stridedCopyDispatch,
  stridedCopyKernel,
  STRIDED_COPY_CHUNK,
} from '@metagrad/kernels-wgsl';
import { DTypeError, IndexOutOfRangeError, InvalidArgumentError, ShapeError } from '../errors';
import { assertSameDevice, sizeOf, type Shape, type Tensor } from '../tensor';
import { fusionEnabled } from '../lazy/flag';
import { opNode, pendingTensor } from '../lazy/expr';
import { empty, scalarBits } from './creation';
import { broadcastShapes, checkNumber, checkTensors, describeValue, fmt, recordInto, stridesOf, UniformWriter } from './util';

function normAxis(op: string, axis: number, rank: number): number {
  const a = typeof axis === 'number' && axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new ShapeError(`${op}: axis ${describeValue(axis)} is out of range for rank ${rank}`);
  return a;
}

/**
 * Throws `Err` unless `v` is an array of integers >= `min` (a bare number, a fractional slice bound or a string
 * would otherwise be read as something else, or fail as a raw TypeError).
 */
function checkIntList(op: string, what: string, v: unknown, Err: typeof ShapeError | typeof InvalidArgumentError, min = -Infinity): readonly number[] {
  if (!Array.isArray(v)) throw new Err(`${op}: ${what} must be an array of integers, got ${describeValue(v)}`);
  for (let i = 0; i < v.length; i++) {
    const d: unknown = v[i];
    if (!Number.isInteger(d) || (d as number) < min) {
      throw new Err(`${op}: ${what} ${describeValue(v)} holds ${describeValue(d)} at ${i}, not an integer${min > -Infinity ? ` >= ${min}` : ''}`);
    }
  }
  return v as readonly number[];
}

function checkIndexTensor(op: string, index: Tensor, x: Tensor): void {
  if (index.dtype !== 'i32') throw new DTypeError(`${op}: index must be i32, got ${index.dtype} ${fmt(index.shape)}`);
  assertSameDevice(x, index);
}

/**
 * The IndexOutOfRangeError detail for an index op on `axis`. Captures shapes, not tensors: the device keeps the
 * last few hundred of these until a readback, and must not keep the tensors alive.
 */
function describeAxis(ax: number, x: Tensor, index: Tensor, src?: Tensor): () => string {
  const [xShape, iShape, sShape] = [x.shape, index.shape, src?.shape];
  return () => `on axis ${ax} of x ${fmt(xShape)} (index ${fmt(iShape)}${sShape ? `, src ${fmt(sShape)}` : ''})`;
}

/** Every index value is out of range when the indexed axis is empty: said on the host, no kernel needed. */
function checkNonEmptyAxis(op: string, x: Tensor, ax: number, index: Tensor): void {
  if (x.shape[ax] === 0 && index.size > 0) {
    throw new IndexOutOfRangeError(
      `${op}: axis ${ax} of x ${fmt(x.shape)} is empty, so none of the ${index.size} index values ${fmt(index.shape)} is in range`,
      op,
    );
  }
}

/** Reshape with at most one −1; shares storage with `x` (no copy, no dispatch). */
export function reshape(x: Tensor, shape: Shape): Tensor {
  checkTensors('reshape', { x });
  checkIntList('reshape', 'shape', shape, ShapeError, -1);
  const holes = shape.filter((d) => d === -1).length;
  if (holes > 1) throw new ShapeError(`reshape: more than one -1 in ${fmt(shape)}`);
  let out = [...shape];
  if (holes === 1) {
    const known = sizeOf(shape.filter((d) => d !== -1));
    if (known === 0 || x.size % known !== 0) throw new ShapeError(`reshape: cannot infer -1 reshaping ${fmt(x.shape)} to ${fmt(shape)}`);
    out = shape.map((d) => (d === -1 ? x.size / known : d));
  }
  if (out.some((d) => !Number.isInteger(d) || d < 0) || sizeOf(out) !== x.size) {
    throw new ShapeError(`reshape: ${fmt(x.shape)} (${x.size} elements) cannot become ${fmt(shape)}`);
  }
  return x.view(out);
}

interface CopyDim {
  size: number;
  stride: number;
  /** Valid output coordinates [lo, hi) for padded dims; undefined means always inside. */
  lo?: number;
  hi?: number;
}

/**
 * out[i] = x[base + Σ coord_d·stride_d] (or `fill` outside [lo, hi) on padded dims). Collapses size-1 dims and
 * dims that are contiguous in both tensors first, so most copies become rank ≤ 3 or a plain buffer copy.
 */
function stridedCopy(x: Tensor, outShape: number[], dims: CopyDim[], base: number, fill = 0): Tensor {
  const src = x.buffer;
  const kept: CopyDim[] = [];
  for (const d of dims) {
    const padded = d.lo !== undefined && (d.lo > 0 || (d.hi ?? d.size) < d.size);
    const dim: CopyDim = padded ? { ...d } : { size: d.size, stride: d.stride };
    if (dim.size === 1 && !padded) continue;
    const prev = kept[kept.length - 1];
    if (prev && prev.lo === undefined && dim.lo === undefined && prev.stride === dim.stride * dim.size) {
      prev.size *= dim.size;
      prev.stride = dim.stride;
      continue;
    }
    kept.push(dim);
  }
  if (kept.length === 0) kept.push({ size: 1, stride: 1 });
  const size = sizeOf(outShape);
  if (kept.length > MOVEMENT_MAX_RANK && size > 0) {
    throw new ShapeError(`strided copy of ${fmt(x.shape)} to ${fmt(outShape)} needs rank ${kept.length} > ${MOVEMENT_MAX_RANK} after merging dims`);
  }
  const out = empty(outShape, x.dtype, x.device);
  if (out.size === 0) return out;
  const padded = kept.some((d) => d.lo !== undefined);
  if (kept.length === 1 && kept[0].stride === 1 && !padded) {
    return recordInto(out, () => x.device.copy(src, base * 4, out.buffer, 0, out.size * 4));
  }
  const last = kept[kept.length - 1].size;
  const rows = out.size / last;
  const u = new UniformWriter()
    .u32(rows * Math.ceil(last / STRIDED_COPY_CHUNK))
    .i32(base)
    .u32(scalarBits(fill, x.dtype))
    .u32(last)
    .u32s(
      kept.map((d) => d.size),
      8,
      1,
    );
  u.u32s(
    kept.map((d) => d.stride >>> 0),
    8,
  );
  u.u32s(
    kept.map((d) => (d.lo ?? 0) >>> 0),
    8,
  );
  u.u32s(
    kept.map((d) => (d.hi ?? d.size) >>> 0),
    8,
  );
  return recordInto(out, () =>
    x.device.dispatch(stridedCopyKernel({ rank: kept.length, padded }), [src, out.buffer], u.finish(), stridedCopyDispatch(rows, last)),
  );
}

/** out.shape[i] = x.shape[perm[i]] (contiguous copy). */
export function permute(x: Tensor, perm: readonly number[]): Tensor {
  checkTensors('permute', { x });
  checkIntList('permute', 'perm', perm, ShapeError);
  const r = x.rank;
  if (perm.length !== r) throw new ShapeError(`permute: perm [${perm.join(', ')}] does not match shape ${fmt(x.shape)}`);
  const p = perm.map((a) => normAxis('permute', a, r));
  if (new Set(p).size !== r) throw new ShapeError(`permute: [${perm.join(', ')}] is not a permutation for shape ${fmt(x.shape)}`);
  const st = stridesOf(x.shape);
  return stridedCopy(
    x,
    p.map((a) => x.shape[a]),
    p.map((a) => ({ size: x.shape[a], stride: st[a] })),
    0,
  );
}

export function transpose(x: Tensor, a: number, b: number): Tensor {
  checkTensors('transpose', { x });
  const perm = Array.from({ length: x.rank }, (_, i) => i);
  const i = normAxis('transpose', a, x.rank);
  const j = normAxis('transpose', b, x.rank);
  [perm[i], perm[j]] = [perm[j], perm[i]];
  return permute(x, perm);
}

/** Broadcast copy to `shape` (new leading dims allowed; −1 keeps the existing size, as torch.expand). */
export function expand(x: Tensor, shape: Shape): Tensor {
  checkTensors('expand', { x });
  checkIntList('expand', 'shape', shape, ShapeError, -1);
  const off = shape.length - x.rank;
  const target = shape.map((d, i) => (d === -1 && i >= off ? x.shape[i - off] : d));
  let ok = off >= 0 && target.every((d) => Number.isInteger(d) && d >= 0);
  if (ok) {
    try {
      ok = broadcastShapes('expand', x.shape, target).every((d, i) => d === target[i]);
    } catch {
      ok = false;
    }
  }
  if (!ok) throw new ShapeError(`expand: cannot expand ${fmt(x.shape)} to ${fmt(shape)}`);
  // Lazy fusion: the broadcast is a leaf read of an elementwise expression (an identity step over x, itself inlined
  // when pending), so a consumer evaluates it through strides instead of a stridedCopy dispatch.
  if (x.dtype === 'f32' && sizeOf(target) > 0 && target.length <= MAX_ELEMENTWISE_RANK && fusionEnabled(x.device)) {
    return pendingTensor(opNode('copy', [x], target, x.device.limits.maxStorageBuffersPerShaderStage || 8), x.device);
  }
  const st = stridesOf(x.shape);
  const dims = target.map((d, i) => ({ size: d, stride: i < off || x.shape[i - off] === 1 ? 0 : st[i - off] }));
  return stridedCopy(x, target, dims, 0);
}

/**
 * Per-axis strided slice; starts/ends/steps may cover only the leading axes. Negative bounds count from the
 * end and bounds clamp to [0, dim], as Python slicing with step > 0.
 */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[], steps?: readonly number[]): Tensor {
  checkTensors('slice', { x });
  checkIntList('slice', 'starts', starts, InvalidArgumentError);
  checkIntList('slice', 'ends', ends, InvalidArgumentError);
  if (steps !== undefined) checkIntList('slice', 'steps', steps, InvalidArgumentError, 1);
  const r = x.rank;
  if (starts.length > r || ends.length !== starts.length || (steps && steps.length !== starts.length)) {
    throw new ShapeError(`slice: starts [${starts.join(', ')}], ends [${ends.join(', ')}] do not fit shape ${fmt(x.shape)}`);
  }
  const st = stridesOf(x.shape);
  const dims: CopyDim[] = [];
  const shape: number[] = [];
  let base = 0;
  for (let i = 0; i < r; i++) {
    const d = x.shape[i];
    const s = i < starts.length ? (steps?.[i] ?? 1) : 1;
    if (!Number.isInteger(s) || s <= 0) throw new InvalidArgumentError(`slice: steps must be positive integers, got ${s} for shape ${fmt(x.shape)}`);
    const clamp = (v: number) => Math.min(d, Math.max(0, v < 0 ? v + d : v));
    const b = i < starts.length ? clamp(starts[i]) : 0;
    const e = i < starts.length ? clamp(ends[i]) : d;
    const n = Math.max(0, Math.ceil((e - b) / s));
    shape.push(n);
    dims.push({ size: n, stride: st[i] * s });
    if (n > 0) base += b * st[i];
  }
  return stridedCopy(x, shape, dims, base);
}

/** Constant pad with one [before, after] pair per axis; negative pads crop (torch's F.pad). */
export function pad(x: Tensor, pads: readonly (readonly [number, number])[], value = 0): Tensor {
  checkTensors('pad', { x });
  checkNumber('pad', 'value', value);
  if (!Array.isArray(pads) || !pads.every((p) => Array.isArray(p) && p.length === 2 && Number.isInteger(p[0]) && Number.isInteger(p[1]))) {
    throw new InvalidArgumentError(`pad: pads must be [before, after] integer pairs, got ${JSON.stringify(pads)} for shape ${fmt(x.shape)}`);
  }
  if (pads.length !== x.rank) throw new ShapeError(`pad: ${pads.length} pad pairs for shape ${fmt(x.shape)}`);
  if (x.dtype !== 'f32' && !Number.isInteger(value)) throw new DTypeError(`pad: value ${value} is not an integer for ${x.dtype} ${fmt(x.shape)}`);
  const shape = x.shape.map((d, i) => d + pads[i][0] + pads[i][1]);
  if (shape.some((d) => !Number.isInteger(d) || d < 0))
    throw new ShapeError(`pad: pads ${JSON.stringify(pads)} give invalid shape ${fmt(shape)} from ${fmt(x.shape)}`);
  const st = stridesOf(x.shape);
  let base = 0;
  const dims = shape.map((size, i) => {
    base -= pads[i][0] * st[i];
    return { size, stride: st[i], lo: pads[i][0], hi: pads[i][0] + x.shape[i] };
  });
  return stridedCopy(x, shape, dims, base, value);
}

export function flip(x: Tensor, axes: readonly number[]): Tensor {
  checkTensors('flip', { x });
  if (!Array.isArray(axes as unknown)) throw new ShapeError(`flip: axes must be an array, got ${describeValue(axes)}`);
  const ax = new Set(axes.map((a) => normAxis('flip', a, x.rank)));
  // torch.flip refuses repeated dims too: flipping an axis twice is either a no-op or a mistake, never what one flip gives.
  if (ax.size !== axes.length) throw new ShapeError(`flip: repeated axis in ${describeValue(axes)} for shape ${fmt(x.shape)}`);
  const st = stridesOf(x.shape);
  let base = 0;
  const dims = x.shape.map((size, i) => {
    if (!ax.has(i)) return { size, stride: st[i] };
    base += Math.max(0, size - 1) * st[i];
    return { size, stride: -st[i] };
  });
  return stridedCopy(x, [...x.shape], dims, base);
}

export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (!Array.isArray(xs as unknown)) throw new InvalidArgumentError(`concat: xs must be an array of tensors, got ${describeValue(xs)}`);
  checkTensors('concat', Object.fromEntries(xs.map((t, i) => [`xs[${i}]`, t])));
  if (xs.length === 0) throw new ShapeError('concat: no tensors');
  const first = xs[0];
  const ax = normAxis('concat', axis, first.rank);
  assertSameDevice(first, ...xs.slice(1));
  for (const t of xs) {
    if (t.rank !== first.rank || t.dtype !== first.dtype || t.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
      throw new ShapeError(`concat on axis ${axis}: shapes ${xs.map((u) => `${u.dtype}${fmt(u.shape)}`).join(', ')} do not agree`);
    }
  }
  const shape = [...first.shape];
  shape[ax] = xs.reduce((p, t) => p + t.shape[ax], 0);
  const srcs = xs.map((t) => t.buffer); // throws DisposedTensorError before anything is allocated
  const out = empty(shape, first.dtype, first.device);
  const outer = sizeOf(shape.slice(0, ax));
  const inner = sizeOf(shape.slice(ax + 1));
  const dstStride = shape[ax] * inner;
  return recordInto(out, () => {
    let pos = 0;
    xs.forEach((t, i) => {
      const chunk = t.shape[ax] * inner;
      if (chunk > 0 && outer > 0) {
        if (outer === 1) t.device.copy(srcs[i], 0, out.buffer, pos * 4, chunk * 4);
        else {
          const u = new UniformWriter().u32(outer).u32(chunk).u32(dstStride).u32(pos).finish();
          t.device.dispatch(blockCopyKernel(), [srcs[i], out.buffer], u, linearDispatch(outer * chunk));
        }
      }
      pos += chunk;
    });
  });
}

/** Checks torch.gather/scatter_add's rule: index.size(d) ≤ ref.size(d) for every d (≠ axis unless `alsoAxis`). */
function checkIndexShape(op: string, index: Tensor, ref: Tensor, ax: number, alsoAxis: boolean): void {
  if (index.rank !== ref.rank || index.shape.some((d, i) => (alsoAxis || i !== ax) && d > ref.shape[i])) {
    throw new ShapeError(`${op}: index shape ${fmt(index.shape)} does not fit ${fmt(ref.shape)} on axis ${ax}`);
  }
}

function checkRank(op: string, x: Tensor): void {
  if (x.rank > MOVEMENT_MAX_RANK) throw new ShapeError(`${op}: rank ${x.rank} ${fmt(x.shape)} exceeds ${MOVEMENT_MAX_RANK}`);
}

/**
 * torch.gather: out[..i..] = x[..index[..i..]..] on `axis`; out has index's shape. An index value outside
 * [0, x.shape[axis]) (negative ones included, as torch) raises IndexOutOfRangeError at the next readback or sync
 * (the values live on the GPU; see Device.indexCheck); its output entries are 0.
 */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  checkTensors('gather', { x, index });
  checkIndexTensor('gather', index, x);
  const ax = normAxis('gather', axis, Math.max(1, x.rank));
  checkIndexShape('gather', index, x, ax, false);
  checkRank('gather', x);
  if (x.rank === 0) {
    // A scalar gathers itself (index 0): treat it as shape [1].
    const x1 = x.view([1]);
    const i1 = index.view([1]);
    try {
      const out1 = gather(x1, 0, i1);
      const out = out1.view([]);
      out1.dispose();
      return out;
    } finally {
      x1.dispose();
      i1.dispose();
    }
  }
  const xBuf = x.buffer;
  const iBuf = index.buffer;
  const out = empty(index.shape, x.dtype, x.device);
  if (out.size === 0) return out;
  const st = stridesOf(x.shape);
  const describe = describeAxis(ax, x, index);
  const flags = x.device.indexFlags;
  // The tag is registered at each dispatch, replays of a compiled step included (a volatile uniform).
  const u = () =>
    new UniformWriter()
      .u32(out.size)
      .u32(st[ax])
      .u32(x.shape[ax])
      .u32(x.device.indexCheck('gather', describe))
      .u32s(index.shape, 8, 1)
      .u32s(
        st.map((s, i) => (i === ax ? 0 : s)),
        8,
      )
      .finish();
  return recordInto(out, () => x.device.dispatch(gatherKernel({ rank: x.rank }), [xBuf, iBuf, out.buffer, flags], u, linearDispatch(out.size)));
}

/**
 * Selects whole slices along `axis` by a 1-D (or 0-D) i32 index. An out-of-range value raises
 * IndexOutOfRangeError at the next readback or sync (its slice is 0), as gather.
 */
export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  checkTensors('indexSelect', { x, index });
  checkIndexTensor('indexSelect', index, x);
  if (index.rank > 1) throw new ShapeError(`indexSelect: index must be 1-D, got ${fmt(index.shape)} for x ${fmt(x.shape)}`);
  const ax = normAxis('indexSelect', axis, x.rank);
  checkNonEmptyAxis('indexSelect', x, ax, index);
  const shape = [...x.shape];
  shape[ax] = index.size;
  const xBuf = x.buffer;
  const iBuf = index.buffer;
  const out = empty(shape, x.dtype, x.device);
  if (index.size === 0) return out;
  const describe = describeAxis(ax, x, index);
  const flags = x.device.indexFlags;
  const tag = () => x.device.indexCheck('indexSelect', describe);
  if (out.size === 0) {
    // No gathering invocation would see the values (x has another empty axis): check them on their own.
    const u = () => new UniformWriter().u32(index.size).u32(x.shape[ax]).u32(tag()).u32(INDEX_OP_CODES.indexSelect).finish();
    return recordInto(out, () => x.device.dispatch(indexBoundsKernel(), [iBuf, flags], u, linearDispatch(index.size)));
  }
  const inner = sizeOf(x.shape.slice(ax + 1));
  const u = () => new UniformWriter().u32(out.size).u32(x.shape[ax]).u32(index.size).u32(inner).u32(tag()).finish();
  return recordInto(out, () => x.device.dispatch(indexSelectKernel(), [xBuf, iBuf, out.buffer, flags], u, linearDispatch(out.size)));
}

/**
 * torch.Tensor.scatter_add out of place: out = x; out[..index[..i..]..] += src[..i..] on `axis`. Deterministic:
 * each output element sums its matching src entries in index order (see scatterAddKernel; cost x.size ×
 * index.shape[axis]). An out-of-range index value raises IndexOutOfRangeError at the next readback or sync (its
 * update is dropped), as gather.
 */
export function scatterAdd(x: Tensor, axis: number, index: Tensor, src: Tensor): Tensor {
  checkTensors('scatterAdd', { x, index, src });
  checkIndexTensor('scatterAdd', index, x);
  assertSameDevice(x, src);
  if (x.dtype !== src.dtype || x.dtype === 'u32') {
    throw new DTypeError(`scatterAdd: x ${x.dtype}${fmt(x.shape)} and src ${src.dtype}${fmt(src.shape)} must share dtype f32 or i32`);
  }
  const ax = normAxis('scatterAdd', axis, Math.max(1, x.rank));
  checkIndexShape('scatterAdd', index, x, ax, false);
  checkIndexShape('scatterAdd (src)', index, src, ax, true);
  checkRank('scatterAdd', x);
  if (x.rank === 0) {
    const views = [x.view([1]), index.view([1]), src.view([1])];
    try {
      const out1 = scatterAdd(views[0], 0, views[1], views[2]);
      const out = out1.view([]);
      out1.dispose();
      return out;
    } finally {
      for (const v of views) v.dispose();
    }
  }
  checkNonEmptyAxis('scatterAdd', x, ax, index);
  const bufs = [x.buffer, index.buffer, src.buffer];
  const out = empty(x.shape, x.dtype, x.device);
  if (out.size === 0) return out;
  const ist = stridesOf(index.shape);
  const sst = stridesOf(src.shape);
  const describe = describeAxis(ax, x, index, src);
  const flags = x.device.indexFlags;
  const u = () =>
    new UniformWriter()
      .u32(out.size)
      .u32(index.size === 0 ? 0 : index.shape[ax])
      .u32(ist[ax])
      .u32(sst[ax])
      .u32(x.device.indexCheck('scatterAdd', describe))
      .u32s([], 3)
      .u32s(x.shape, 8, 1)
      .u32s(index.shape, 8, 1)
      .u32s(ist, 8)
      .u32s(sst, 8)
      .finish();
  const spec = scatterAddKernel({ dtype: x.dtype, rank: x.rank, axis: ax });
  return recordInto(out, () => x.device.dispatch(spec, [...bufs, out.buffer, flags], u, linearDispatch(out.size)));
}

/**
 * f32 one-hot rows as a new last axis. An index outside [0, numClasses) raises IndexOutOfRangeError at the next
 * readback or sync (its row is all zeros), as gather.
 */
export function oneHot(index: Tensor, numClasses: number): Tensor {
  checkTensors('oneHot', { index });
  checkIndexTensor('oneHot', index, index);
  if (!Number.isInteger(numClasses) || numClasses <= 0) {
    throw new InvalidArgumentError(`oneHot: numClasses must be a positive integer, got ${numClasses} for index ${fmt(index.shape)}`);
  }
  const iBuf = index.buffer;
  const out = empty([...index.shape, numClasses], 'f32', index.device);
  if (out.size === 0) return out;
  const indexShape = index.shape;
  const describe = () => `(numClasses ${numClasses}, index ${fmt(indexShape)})`;
  const flags = index.device.indexFlags;
  const u = () => new UniformWriter().u32(out.size).u32(numClasses).u32(index.device.indexCheck('oneHot', describe)).finish();
  return recordInto(out, () => index.device.dispatch(oneHotKernel(), [iBuf, out.buffer, flags], u, linearDispatch(out.size)));
}
