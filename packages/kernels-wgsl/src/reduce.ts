/** @file WGSL generators for reductions over the middle axis of an [outer, R, inner] view, and fused softmax. */
import { fusedKey, fusedLoad, type FusedProgram } from './fused';
import { memoKernel, type KernelIR } from './render';
import type { KernelSpec } from './types';

export const REDUCE_OP_NAMES = ['sum', 'max', 'min', 'logsumexp', 'argmax'] as const;
export type ReduceOpName = (typeof REDUCE_OP_NAMES)[number];

/**
 * How invocations map onto [outer, R, inner]. 'row' (inner = 1): each invocation folds a contiguous run of a
 * row, read as vec4s (the fastest access on llvmpipe). 'col': inner > 1, one output column per invocation.
 * 'col4': inner % 4 = 0, four adjacent columns per invocation read as one vec4.
 */
export type ReduceLayout = 'row' | 'col' | 'col4';

export const REDUCE_WG = 64;

/** Specs memoised by name (the name spells every parameter of the generated code). */
const reduceCache = new Map<string, KernelSpec>();
/** Kernels with a fused prologue, memoised by name too (bounded: programs vary). */
const prologueCache = new Map<string, KernelSpec>();

function memoPrologue(name: string, build: () => KernelIR): KernelSpec {
  if (prologueCache.size > 4096) prologueCache.clear();
  return memoKernel(prologueCache, name, build);
}

/**
 * A kernel's element loads: from its input `x` (vec4s), or, with a fused prologue, evaluating the program from its
 * leaves (`pl`/`pl4` of fusedLoad). `one(i)` is element i, `four(q)` elements 4q .. 4q + 3 (q a vec4 index).
 */
function loads(prologue: FusedProgram | undefined) {
  const load = prologue ? fusedLoad(prologue) : null;
  return {
    one: (i: string) => (load ? `pl(${i})` : `x[${i} >> 2u][${i} & 3u]`),
    four: (q: string) => (load ? `pl4(${q})` : `x[${q}]`),
    inputs: load ? load.inputs : [{ name: 'x', dtype: 'f32', vec: 4 } as const],
    outputs: load ? load.outputs : [],
    uniforms: load ? load.uniforms : [],
    functions: load ? load.functions : undefined,
  };
}

export interface ReduceKey {
  op: ReduceOpName;
  layout: ReduceLayout;
  /** argmax passes after the first read the running (value, index) pairs of the previous pass. */
  indexInput?: boolean;
  /** sum in 'row' layout only: reduce the elementwise product of x and a second input y (a fused dot product). */
  product?: boolean;
  /**
   * First pass only (not argmax, not with `product`): the input is a fused elementwise program evaluated at each
   * load instead of a buffer `x` (a reduction prologue). Its leaves are bound first, its extra outputs after the
   * reduction's values, its uniform words after the reduction's 8 (see fusedLoad).
   */
  prologue?: FusedProgram;
}

/**
 * Reduces x viewed as [outer, R, inner] over R, split into P parts of C elements: output [outer, P, inner]
 * (P = 1 on the final pass). Uniform: { outer, R, inner, C, P, groups, scale: f32 } where groups is the number
 * of invocations per (outer, part): 1 (row), inner (col) or inner / 4 (col4). Sum multiplies by `scale` (mean).
 * Bindings: x (as vec4s), [indices in], values out, [indices out for argmax], uniform.
 */
export function reduceKernel(key: ReduceKey): KernelSpec {
  const { op, layout } = key;
  const product = Boolean(key.product);
  if (product && (op !== 'sum' || layout !== 'row')) throw new Error(`reduceKernel: a product input needs sum over rows, got ${op} ${layout}`);
  const indexInput = op === 'argmax' && Boolean(key.indexInput);
  const name = `reduce:${op}:${layout}${indexInput ? ':idx' : ''}${product ? ':dot' : ''}`;
  const prologue = key.prologue;
  if (prologue) {
    if (product || op === 'argmax') throw new Error(`reduceKernel: a prologue needs sum/max/min/logsumexp without product, got ${op}`);
    const pname = `${name}:pro:${fusedKey(prologue)}`;
    return memoPrologue(pname, () => reduceIR(pname, { op, layout, indexInput, product, prologue }));
  }
  return memoKernel(reduceCache, name, () => reduceIR(name, { op, layout, indexInput, product }));
}

function reduceIR(name: string, { op, layout, indexInput, product, prologue }: Required<Omit<ReduceKey, 'prologue'>> & Pick<ReduceKey, 'prologue'>): KernelIR {
  const ld = loads(prologue);
  const isArg = op === 'argmax';
  const lanes = layout === 'col' || (isArg && layout === 'row') ? 1 : 4;
  const L = Array.from({ length: lanes }, (_, l) => l);

  // Element i of the row layout's input (x·y for a product reduction).
  const load = (i: string): string => (product ? `x[${i} >> 2u][${i} & 3u] * y[${i} >> 2u][${i} & 3u]` : ld.one(i));
  // One scan over the part's elements, calling `step(lane, value, rowIndex)` for each in order.
  const scan = (step: (l: number, v: string, r: string) => string): string => {
    if (layout === 'row') {
      const lane = (k: number) => (lanes === 1 ? 0 : k);
      // Scalar head up to a vec4 boundary, vec4 body, scalar tail: rows need not start on a vec4.
      return `{
  var i = start;
  for (; i < end && (i & 3u) != 0u; i++) { let v = ${load('i')}; ${step(0, 'v', 'i - rowBase')} }
  for (; i + 4u <= end; i += 4u) {
    let q = ${product ? 'x[i >> 2u] * y[i >> 2u]' : ld.four('i >> 2u')};
    ${['x', 'y', 'z', 'w'].map((c, k) => step(lane(k), `q.${c}`, `i + ${k}u - rowBase`)).join('\n    ')}
  }
  for (; i < end; i++) { let v = ${load('i')}; ${step(0, 'v', 'i - rowBase')} }
  }`;
    }
    if (layout === 'col') {
      return `
  for (var r = start; r < end; r++) { let e = (o * u.R + r) * u.inner + kq; let v = ${ld.one('e')}; ${step(0, 'v', 'r')} }`;
    }
    return `
  for (var r = start; r < end; r++) {
    let e = (o * u.R + r) * u.inner + kq * 4u;
    let q = ${ld.four('e >> 2u')};
    ${['x', 'y', 'z', 'w'].map((c, k) => step(k, `q.${c}`, 'r')).join('\n    ')}
  }`;
  };

  // Row layout folds its 4 lanes into lane 0 at the end; column layouts keep one result per lane.
  const results = layout === 'row' ? [0] : L;
  let body: string;
  if (op === 'sum') {
    body = `${L.map((l) => `var a${l} = 0.0;`).join(' ')}
  ${scan((l, v) => `a${l} += ${v};`)}
  ${layout === 'row' && lanes === 4 ? 'a0 = (a0 + a1) + (a2 + a3);' : ''}`;
  } else if (op === 'max' || op === 'min') {
    const cmp = op === 'max' ? '>' : '<';
    const init = op === 'max' ? '-mg_inf()' : 'mg_inf()';
    const step = (l: number, v: string) => `a${l} = select(a${l}, ${v}, ${v} ${cmp} a${l} || mg_isnan(${v}));`;
    body = `${L.map((l) => `var a${l} = ${init};`).join(' ')}
  ${scan(step)}
  ${layout === 'row' ? [1, 2, 3].map((l) => step(0, `a${l}`)).join(' ') : ''}`;
  } else if (op === 'logsumexp') {
    // Two scans (max, then Σ exp(v − max)) over a part that is still in cache; lse of lse's is the lse of all,
    // so partial passes compose.
    const stepMax = (l: number, v: string) => `m${l} = select(m${l}, ${v}, ${v} > m${l} || mg_isnan(${v}));`;
    body = `${L.map((l) => `var m${l} = -mg_inf();`).join(' ')}
  ${scan(stepMax)}
  ${layout === 'row' ? [1, 2, 3].map((l) => stepMax(0, `m${l}`)).join(' ') : ''}
  ${L.map((l) => `var s${l} = 0.0;`).join(' ')}
  ${scan((l, v) => `s${l} += exp(${v} - m${layout === 'row' ? 0 : l});`)}
  ${layout === 'row' ? 's0 = (s0 + s1) + (s2 + s3);' : ''}
  ${results.map((l) => `let a${l} = select(m${l}, m${l} + log(s${l}), abs(m${l}) < mg_inf());`).join('\n  ')}`;
  } else {
    // First maximum wins; a NaN is the maximum and the first NaN stops the search (torch.argmax).
    const step = (l: number, v: string, r: string) => {
      const idx = indexInput ? (layout === 'row' ? `idxIn[${r} + rowBase]` : layout === 'col' ? 'idxIn[e]' : `idxIn[e + ${l}u]`) : `i32(${r})`;
      return `if (!mg_isnan(a${l}) && (${v} > a${l} || mg_isnan(${v}))) { a${l} = ${v}; b${l} = ${idx}; }`;
    };
    body = `${L.map((l) => `var a${l} = -mg_inf(); var b${l} = ${indexInput ? (layout === 'row' ? 'idxIn[start]' : layout === 'col' ? `idxIn[(o * u.R + start) * u.inner + kq]` : `idxIn[(o * u.R + start) * u.inner + kq * 4u + ${l}u]`) : 'i32(start - rowBase)'};`).join(' ')}
  ${scan(step)}`;
  }

  const outIndex = (l: number) => (layout === 'col4' ? `outBase + ${l}u` : 'outBase');
  const value = (l: number) => (op === 'sum' ? `a${l} * u.scale` : `a${l}`);
  const writes = results.map((l) => `vals[${outIndex(l)}] = ${value(l)};${isArg ? ` idxOut[${outIndex(l)}] = b${l};` : ''}`).join('\n  ');

  return {
    name,
    inputs: [
      ...ld.inputs,
      ...(product ? [{ name: 'y', dtype: 'f32', vec: 4 } as const] : []),
      ...(indexInput ? [{ name: 'idxIn', dtype: 'i32' } as const] : []),
    ],
    outputs: [{ name: 'vals', dtype: 'f32' }, ...(isArg ? [{ name: 'idxOut', dtype: 'i32' } as const] : []), ...ld.outputs],
    uniforms: [...['outer', 'R', 'inner', 'C', 'P', 'groups'].map((f) => [f, 'u32'] as const), ['scale', 'f32'], ...ld.uniforms],
    functions: ld.functions,
    workgroupSize: REDUCE_WG,
    body: `let kq = gi % u.groups;
  let t = gi / u.groups;
  let p = t % u.P;
  let o = t / u.P;
  if (o >= u.outer) { return; }
  let rowBase = ${layout === 'row' ? 'o * u.R' : '0u'};
  let start = rowBase + p * u.C;
  let end = rowBase + min(u.R, p * u.C + u.C);
  let outBase = (o * u.P + p) * u.inner + ${layout === 'col4' ? 'kq * 4u' : 'kq'};
  ${body}
  ${writes}`,
  };
}

export interface SoftmaxKey {
  log: boolean;
  layout: ReduceLayout;
  /** The input is a fused elementwise program evaluated at each load (see ReduceKey.prologue; uniform words after 4). */
  prologue?: FusedProgram;
}

/**
 * Fused (log-)softmax over R of [outer, R, inner]: per invocation three scans (max, Σ exp, write) over one row
 * (row) or one/four columns (col/col4). Uniform: { outer, R, inner, groups }. Bindings: x (vec4s), out, uniform.
 * All −inf slices give NaN, as torch.
 */
export function softmaxKernel(key: SoftmaxKey): KernelSpec {
  const { layout, prologue } = key;
  const base = `${key.log ? 'logsoftmax' : 'softmax'}:${layout}`;
  if (prologue) {
    const name = `${base}:pro:${fusedKey(prologue)}`;
    return memoPrologue(name, () => softmaxIR(name, key));
  }
  return memoKernel(reduceCache, base, () => softmaxIR(base, key));
}

function softmaxIR(name: string, key: SoftmaxKey): KernelIR {
  const { layout, prologue } = key;
  const ld = loads(prologue);
  const lanes = layout === 'col4' ? 4 : 1;
  const L = Array.from({ length: lanes }, (_, l) => l);
  const comps = ['x', 'y', 'z', 'w'];
  const scan = (step: (l: number, v: string, e: string) => string): string => {
    if (layout === 'row') {
      return `for (var e = base; e < base + u.R; e++) { let v = ${ld.one('e')}; ${step(0, 'v', 'e')} }`;
    }
    if (layout === 'col') {
      return `for (var r = 0u; r < u.R; r++) { let e = base + r * u.inner; let v = ${ld.one('e')}; ${step(0, 'v', 'e')} }`;
    }
    return `for (var r = 0u; r < u.R; r++) {
    let e = base + r * u.inner;
    let q = ${ld.four('e >> 2u')};
    ${L.map((l) => step(l, `q.${comps[l]}`, `e + ${l}u`)).join('\n    ')}
  }`;
  };
  const finish = key.log ? (l: number, v: string) => `${v} - lse${l}` : (l: number, v: string) => `exp(${v} - m${l}) * inv${l}`;
  return {
    name,
    inputs: ld.inputs,
    outputs: [{ name: 'out', dtype: 'f32' }, ...ld.outputs],
    uniforms: [...['outer', 'R', 'inner', 'groups'].map((f) => [f, 'u32'] as const), ...ld.uniforms],
    functions: ld.functions,
    workgroupSize: REDUCE_WG,
    body: `let kq = gi % u.groups;
  let o = gi / u.groups;
  if (o >= u.outer) { return; }
  let base = o * u.R * u.inner + ${layout === 'col4' ? 'kq * 4u' : 'kq'};
  ${L.map((l) => `var m${l} = -mg_inf(); var s${l} = 0.0;`).join(' ')}
  ${scan((l, v) => `m${l} = select(m${l}, ${v}, ${v} > m${l} || mg_isnan(${v}));`)}
  ${scan((l, v) => `s${l} += exp(${v} - m${l});`)}
  ${L.map((l) => (key.log ? `let lse${l} = m${l} + log(s${l});` : `let inv${l} = 1.0 / s${l};`)).join(' ')}
  ${scan((l, v, e) => `out[${e}] = ${finish(l, v)};`)}`,
  };
}
