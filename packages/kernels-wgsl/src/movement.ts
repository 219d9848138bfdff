/** @file WGSL generators for movement kernels: one strided copy (permute/expand/slice/flip/pad), block copy, gather, scatter-add, one-hot. */
import { LINEAR_WG } from './basic';
import { memoKernel, type BufferParam } from './render';
import { grid1d, type DType, type KernelSpec } from './types';
import { INDEX_FLAGS, INDEX_OP_CODES, reportBadIndexFn } from './index-flags';

const movementCache = new Map<string, KernelSpec>();
/** Raw 32-bit words: the copies serve f32, i32 and u32 with one pipeline. */
const words = (name: string): BufferParam => ({ name, dtype: 'u32' });
const INDEX: BufferParam = { name: 'index', dtype: 'i32' };
/** A uniform field of 8 scalars padded to 16-byte array elements (read with `at`). */
const arr8 = (t: 'u32' | 'i32') => `array<vec4<${t}>, 2>`;

/** Highest rank the shape-generic movement kernels handle (uniform arrays hold 8; ops collapse dims first). */
export const MOVEMENT_MAX_RANK = 6;

/** Elements copied by one strided-copy invocation along the innermost dim (amortises the index div/mods). */
export const STRIDED_COPY_CHUNK = 8;

/** `u.<name>[d]` for a `array<vec4<…>, 2>` uniform field (8 scalars padded to 16-byte array elements). */
function at(name: string, d: number): string {
  return `u.${name}[${d >> 2}][${d & 3}]`;
}

export interface StridedCopyKey {
  /** Rank of the (already collapsed) output, 1..MOVEMENT_MAX_RANK. */
  rank: number;
  /** Whether out-of-range input coordinates read `fill` (pad) instead of being impossible. */
  padded: boolean;
}

/**
 * out[i] = in[base + Σ_d coord_d(i)·stride_d], or the fill bits where (padded) some coord_d ∉ [lo_d, hi_d).
 * Copies raw 32-bit words, so one pipeline serves f32, i32 and u32. Strides are signed (flip uses negative ones).
 * Each invocation copies STRIDED_COPY_CHUNK consecutive elements of one innermost row, so the index
 * decomposition is paid once per chunk. Uniform: { n: rows·segs, base, fill, last: last-dim size, shape[8],
 * stride[8], lo[8], hi[8] } with lo/hi in output coordinates.
 */
export function stridedCopyKernel(key: StridedCopyKey): KernelSpec {
  const name = `stridedCopy:r${key.rank}${key.padded ? ':pad' : ''}`;
  return memoKernel(movementCache, name, () => {
    const r = key.rank;
    const last = r - 1;
    const lines: string[] = [];
    for (let d = last - 1; d >= 0; d--) {
      lines.push(`  let c${d} = i32(rem % ${at('shape', d)}); rem = rem / ${at('shape', d)};`);
      lines.push(`  off += c${d} * ${at('stride', d)};`);
      if (key.padded) lines.push(`  inside = inside && c${d} >= ${at('lo', d)} && c${d} < ${at('hi', d)};`);
    }
    const lastCheck = key.padded ? ` && c >= ${at('lo', last)} && c < ${at('hi', last)}` : '';
    return {
      name,
      inputs: [words('src')],
      outputs: [words('dst')],
      uniforms: [
        ['n', 'u32'],
        ['base', 'i32'],
        ['fill', 'u32'],
        ['last', 'u32'],
        ['shape', arr8('u32')],
        ['stride', arr8('i32')],
        ['lo', arr8('i32')],
        ['hi', arr8('i32')],
      ],
      workgroupSize: LINEAR_WG,
      body: `if (gi >= u.n) { return; }
  let segs = (u.last + ${STRIDED_COPY_CHUNK - 1}u) / ${STRIDED_COPY_CHUNK}u;
  let seg = gi % segs;
  var rem = gi / segs;
  let row = rem;
  var off = u.base;
  var inside = true;
${lines.join('\n')}
  let c0last = i32(seg * ${STRIDED_COPY_CHUNK}u);
  let end = min(u.last, (seg + 1u) * ${STRIDED_COPY_CHUNK}u);
  let step = ${at('stride', last)};
  var o = row * u.last + u32(c0last);
  for (var c = c0last; c < i32(end); c++) {
    if (inside${lastCheck}) { dst[o] = src[u32(off + c * step)]; } else { dst[o] = u.fill; }
    o++;
  }`,
    };
  });
}

export function stridedCopyDispatch(rows: number, last: number): [number, number, number] {
  return grid1d(Math.ceil((rows * Math.ceil(last / STRIDED_COPY_CHUNK)) / LINEAR_WG));
}

/**
 * Copies `outer` blocks of `chunk` words from a contiguous source into a destination whose blocks are
 * `dstStride` apart starting at `dstOffset` (one concat input into its slot). Uniform: { outer, chunk, dstStride, dstOffset }.
 */
export function blockCopyKernel(): KernelSpec {
  return memoKernel(movementCache, 'blockCopy', () => ({
    name: 'blockCopy',
    inputs: [words('src')],
    outputs: [words('dst')],
    uniforms: ['outer', 'chunk', 'dstStride', 'dstOffset'].map((f) => [f, 'u32'] as const),
    workgroupSize: LINEAR_WG,
    body: `if (gi >= u.outer * u.chunk) { return; }
  let b = gi / u.chunk;
  let j = gi - b * u.chunk;
  dst[u.dstOffset + b * u.dstStride + j] = src[gi];`,
  }));
}

export interface GatherKey {
  rank: number;
}

/**
 * torch.gather: out (shaped like index, contiguous) reads x at the index's coordinates with the `axis` coordinate
 * replaced by the index value. An out-of-range index value writes 0 and raises the device's index flag (binding 3,
 * see index-flags.ts), which the host turns into IndexOutOfRangeError at the next readback.
 * Uniform: { n, axisStride, axisSize, tag, idxShape[8], xStride[8] (0 on the axis) }.
 */
export function gatherKernel(key: GatherKey): KernelSpec {
  const name = `gather:r${key.rank}`;
  return memoKernel(movementCache, name, () => {
    const lines: string[] = [];
    for (let d = key.rank - 1; d >= 0; d--) {
      lines.push(`  off += (rem % ${at('idxShape', d)}) * ${at('xStride', d)}; rem = rem / ${at('idxShape', d)};`);
    }
    return {
      name,
      inputs: [words('x'), INDEX],
      outputs: [words('out'), INDEX_FLAGS],
      uniforms: [...['n', 'axisStride', 'axisSize', 'tag'].map((f) => [f, 'u32'] as const), ['idxShape', arr8('u32')], ['xStride', arr8('u32')]],
      workgroupSize: LINEAR_WG,
      functions: reportBadIndexFn(INDEX_OP_CODES.gather),
      body: `if (gi >= u.n) { return; }
  var rem = gi;
  var off = 0u;
${lines.join('\n')}
  let k = index[gi];
  if (k < 0 || u32(k) >= u.axisSize) { out[gi] = 0u; reportBadIndex(k, u.axisSize, u.tag); return; }
  out[gi] = x[off + u32(k) * u.axisStride];`,
    };
  });
}

/**
 * indexSelect on x viewed as [outer, size, inner]: out[o, j, i] = x[o, index[j], i]. An out-of-range index[j]
 * writes 0 and raises the index flag once per entry (from o = i = 0). Uniform: { n, size, count, inner, tag }.
 */
export function indexSelectKernel(): KernelSpec {
  return memoKernel(movementCache, 'indexSelect', () => ({
    name: 'indexSelect',
    inputs: [words('x'), INDEX],
    outputs: [words('out'), INDEX_FLAGS],
    uniforms: ['n', 'size', 'count', 'inner', 'tag'].map((f) => [f, 'u32'] as const),
    workgroupSize: LINEAR_WG,
    functions: reportBadIndexFn(INDEX_OP_CODES.indexSelect),
    body: `if (gi >= u.n) { return; }
  let i = gi % u.inner;
  let t = gi / u.inner;
  let j = t % u.count;
  let o = t / u.count;
  let k = index[j];
  if (k < 0 || u32(k) >= u.size) {
    out[gi] = 0u;
    if (o == 0u && i == 0u) { reportBadIndex(k, u.size, u.tag); }
    return;
  }
  out[gi] = x[(o * u.size + u32(k)) * u.inner + i];`,
  }));
}

export interface ScatterAddKey {
  dtype: Extract<DType, 'f32' | 'i32'>;
  rank: number;
  axis: number;
}

/**
 * Deterministic out-of-place scatter-add without atomics: one invocation per output element scans the index
 * entries along `axis` that share its other coordinates and adds the matching src values in index order, so
 * the f32 result is bit-identical run to run and equals a sequential scatter. Cost: x.size × index.shape[axis].
 * The invocations at axis coordinate 0 also range-check every index entry they scan (each entry once) and raise
 * the index flag for out-of-range ones, whose updates are dropped.
 * Uniform: { n, idxAxisLen, idxAxisStride, srcAxisStride, tag, _, _, _, xShape[8], idxShape[8], idxStride[8], srcStride[8] }.
 */
export function scatterAddKernel(key: ScatterAddKey): KernelSpec {
  const name = `scatterAdd:${key.dtype}:r${key.rank}:a${key.axis}`;
  return memoKernel(movementCache, name, () => {
    const t = key.dtype;
    const lines: string[] = [];
    for (let d = key.rank - 1; d >= 0; d--) {
      lines.push(`  let c${d} = rem % ${at('xShape', d)}; rem = rem / ${at('xShape', d)};`);
      if (d !== key.axis) {
        lines.push(`  covered = covered && c${d} < ${at('idxShape', d)};`);
        lines.push(`  ib += c${d} * ${at('idxStride', d)}; sb += c${d} * ${at('srcStride', d)};`);
      }
    }
    return {
      name,
      inputs: [{ name: 'x', dtype: t }, INDEX, { name: 'src', dtype: t }],
      outputs: [{ name: 'out', dtype: t }, INDEX_FLAGS],
      uniforms: [
        ...['n', 'idxAxisLen', 'idxAxisStride', 'srcAxisStride', 'tag', 'pad0', 'pad1', 'pad2'].map((f) => [f, 'u32'] as const),
        ...['xShape', 'idxShape', 'idxStride', 'srcStride'].map((f) => [f, arr8('u32')] as const),
      ],
      workgroupSize: LINEAR_WG,
      functions: reportBadIndexFn(INDEX_OP_CODES.scatterAdd),
      body: `if (gi >= u.n) { return; }
  var rem = gi;
  var covered = true;
  var ib = 0u;
  var sb = 0u;
${lines.join('\n')}
  var acc = x[gi];
  if (covered) {
    let wanted = i32(c${key.axis});
    let bound = ${at('xShape', key.axis)};
    let check = c${key.axis} == 0u;
    for (var i = 0u; i < u.idxAxisLen; i++) {
      let k = index[ib + i * u.idxAxisStride];
      if (k == wanted) { acc += src[sb + i * u.srcAxisStride]; }
      else if (check && (k < 0 || u32(k) >= bound)) { reportBadIndex(k, bound, u.tag); }
    }
  }
  out[gi] = acc;`,
    };
  });
}

/**
 * out[i·classes + c] = f32(index[i] == c); an index outside [0, classes) gives a zero row and raises the index
 * flag (from c = 0). Uniform: { n, classes, tag }.
 */
export function oneHotKernel(): KernelSpec {
  return memoKernel(movementCache, 'oneHot', () => ({
    name: 'oneHot',
    inputs: [INDEX],
    outputs: [{ name: 'out', dtype: 'f32' }, INDEX_FLAGS],
    uniforms: ['n', 'classes', 'tag'].map((f) => [f, 'u32'] as const),
    workgroupSize: LINEAR_WG,
    functions: reportBadIndexFn(INDEX_OP_CODES.oneHot),
    body: `if (gi >= u.n) { return; }
  let row = gi / u.classes;
  let c = gi - row * u.classes;
  let k = index[row];
  if (c == 0u && (k < 0 || u32(k) >= u.classes)) { reportBadIndex(k, u.classes, u.tag); }
  out[gi] = select(0.0, 1.0, k == i32(c));`,
  }));
}
