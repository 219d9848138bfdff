/** @file WGSL generators for elementwise kernels: unary math, broadcasting binary/compare ops, where, cast. */
import { BUILTINS, LINEAR_WG, linearIndex } from './basic';
import type { DType, KernelSpec } from './types';

export const UNARY_OP_NAMES = [
  'neg', 'exp', 'log', 'log1p', 'expm1', 'sin', 'cos', 'tanh', 'sigmoid',
  'sqrt', 'rsqrt', 'recip', 'abs', 'sign', 'relu', 'square', 'floor',
] as const;
export type UnaryOpName = (typeof UNARY_OP_NAMES)[number];
/** Unary ops that also make sense on integers; the rest are f32-only. */
export const INT_UNARY_OPS: readonly UnaryOpName[] = ['neg', 'abs', 'sign', 'relu', 'square'];

export const ARITH_OP_NAMES = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum'] as const;
export const COMPARE_OP_NAMES = ['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const;
export type ArithOpName = (typeof ARITH_OP_NAMES)[number];
export type CompareOpName = (typeof COMPARE_OP_NAMES)[number];
export type BinaryOpName = ArithOpName | CompareOpName;
/** Binary ops that accept i32/u32 operands. */
export const INT_BINARY_OPS: readonly BinaryOpName[] = ['add', 'sub', 'mul', 'maximum', 'minimum', ...COMPARE_OP_NAMES];

/**
 * How an operand is read. 'full': same shape as the output (contiguous); 'scalar': one element splatted;
 * 'uniform': a host scalar passed in the uniform block (no buffer); 'strided': broadcast through strides.
 */
export type OperandMode = 'full' | 'scalar' | 'uniform';

/**
 * Where the kernel finds its operands: 'vec4' when no operand needs strides (each invocation walks a contiguous
 * chunk of vec4s, the fastest shape on llvmpipe), else 'strided' with the folded output rank.
 */
export type ElementwiseLayout = { kind: 'vec4'; operands: readonly OperandMode[] } | { kind: 'strided'; rank: number };

/** Max rank of the strided kernels (after folding adjacent dims that broadcast alike). */
export const MAX_ELEMENTWISE_RANK = 8;
/** vec4s per invocation in the contiguous kernels; elements per invocation in the strided ones. */
export const VEC4_CHUNK = 4;
export const STRIDED_CHUNK = 8;

/**
 * Shared WGSL math: NaN tests by bit pattern (compilers may fold `x != x`), non-constant inf/NaN (constant ones
 * are shader-creation errors), and accurate expm1/log1p (GPU exp/log only promise absolute error near 0/1).
 */
export const WGSL_MATH = /* wgsl */ `
fn mg_isnan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
fn mg_nan() -> f32 { var b = 0x7fc00000u; return bitcast<f32>(b); }
fn mg_inf() -> f32 { var b = 0x7f800000u; return bitcast<f32>(b); }
fn mg_log(x: f32) -> f32 {
  if (x < 0.0) { return mg_nan(); }
  if (x == 0.0) { return -mg_inf(); }
  return log(x);
}
fn mg_expm1(x: f32) -> f32 {
  if (abs(x) < 0.5) {
    return x * (1.0 + x * (1.0 / 2.0 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 + x * (1.0 / 720.0
      + x * (1.0 / 5040.0 + x * (1.0 / 40320.0 + x * (1.0 / 362880.0)))))))));
  }
  return exp(x) - 1.0;
}
fn mg_log1p(x: f32) -> f32 {
  if (abs(x) < 0.5) {
    // log1p(x) = 2 atanh(s) with s = x / (2 + x), |s| <= 1/3: the odd series converges fast and stays relative.
    let s = x / (2.0 + x);
    let s2 = s * s;
    return 2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0
      + s2 * (1.0 / 13.0 + s2 * (1.0 / 15.0 + s2 * (1.0 / 17.0)))))))));
  }
  return mg_log(1.0 + x);
}
fn mg_tanh(x: f32) -> f32 {
  // tanh|x| = -e / (2 + e) with e = expm1(-2|x|): no inf/inf for large |x|, no cancellation near 0.
  let e = mg_expm1(-2.0 * abs(x));
  let t = -e / (2.0 + e);
  return select(t, -t, x < 0.0);
}
fn mg_sigmoid(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
fn mg_sign(x: f32) -> f32 {
  if (mg_isnan(x)) { return x; }
  return select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0);
}
fn mg_relu(x: f32) -> f32 { return select(0.0, x, x > 0.0 || mg_isnan(x)); }
fn mg_sqrt(x: f32) -> f32 { return select(sqrt(x), mg_nan(), x < 0.0); }
fn mg_max(a: f32, b: f32) -> f32 {
  if (mg_isnan(a) || mg_isnan(b)) { return mg_nan(); }
  return select(b, a, a > b);
}
fn mg_min(a: f32, b: f32) -> f32 {
  if (mg_isnan(a) || mg_isnan(b)) { return mg_nan(); }
  return select(b, a, a < b);
}
fn mg_pow(x: f32, y: f32) -> f32 {
  if (mg_isnan(x) || mg_isnan(y)) { return mg_nan(); }
  if (y == 0.0) { return 1.0; }
  let ax = abs(x);
  var r: f32;
  if (ax == 0.0) { r = select(mg_inf(), 0.0, y > 0.0); } else { r = pow(ax, y); }
  if (x < 0.0) {
    if (floor(y) != y) { return mg_nan(); }
    if (fract(y * 0.5) != 0.0) { r = -r; }
  }
  return r;
}
fn mg_f32_to_i32(x: f32) -> i32 {
  if (mg_isnan(x)) { return 0; }
  if (x >= 2147483648.0) { return 2147483647; }
  if (x <= -2147483648.0) { return -2147483647 - 1; }
  return i32(x);
}
fn mg_f32_to_u32(x: f32) -> u32 {
  if (mg_isnan(x) || x <= 0.0) { return 0u; }
  if (x >= 4294967296.0) { return 4294967295u; }
  return u32(x);
}
`;

function unaryExpr(op: UnaryOpName, dtype: DType): string {
  const isFloat = dtype === 'f32';
  switch (op) {
    case 'neg': return '-v0';
    case 'exp': return 'exp(v0)';
    case 'log': return 'mg_log(v0)';
    case 'log1p': return 'mg_log1p(v0)';
    case 'expm1': return 'mg_expm1(v0)';
    case 'sin': return 'sin(v0)';
    case 'cos': return 'cos(v0)';
    case 'tanh': return 'mg_tanh(v0)';
    case 'sigmoid': return 'mg_sigmoid(v0)';
    case 'sqrt': return 'mg_sqrt(v0)';
    case 'rsqrt': return '1.0 / mg_sqrt(v0)';
    case 'recip': return '1.0 / v0';
    case 'abs': return 'abs(v0)';
    case 'sign': return isFloat ? 'mg_sign(v0)' : 'sign(v0)';
    case 'relu': return isFloat ? 'mg_relu(v0)' : `max(v0, ${dtype}(0))`;
    case 'square': return 'v0 * v0';
    case 'floor': return 'floor(v0)';
  }
}

function binaryExpr(op: BinaryOpName, dtype: DType): string {
  const isFloat = dtype === 'f32';
  const cmp = (c: string) => `select(0.0, 1.0, v0 ${c} v1)`;
  switch (op) {
    case 'add': return 'v0 + v1';
    case 'sub': return 'v0 - v1';
    case 'mul': return 'v0 * v1';
    case 'div': return 'v0 / v1';
    case 'pow': return 'mg_pow(v0, v1)';
    case 'maximum': return isFloat ? 'mg_max(v0, v1)' : 'max(v0, v1)';
    case 'minimum': return isFloat ? 'mg_min(v0, v1)' : 'min(v0, v1)';
    case 'eq': return cmp('==');
    case 'ne': return cmp('!=');
    case 'lt': return cmp('<');
    case 'le': return cmp('<=');
    case 'gt': return cmp('>');
    case 'ge': return cmp('>=');
  }
}

function castExpr(from: DType, to: DType): string {
  if (from === to) return 'v0';
  if (to === 'f32') return 'f32(v0)';
  if (from === 'f32') return to === 'i32' ? 'mg_f32_to_i32(v0)' : 'mg_f32_to_u32(v0)';
  return `bitcast<${to}>(v0)`;
}

/** A scalar function of up to four operands, from which both kernel layouts are generated. */
interface MapBody {
  name: string;
  inputs: readonly DType[];
  output: DType;
  expr: string;
}

function layoutKey(layout: ElementwiseLayout): string {
  if (layout.kind === 'strided') return `r${layout.rank}`;
  return `v4:${layout.operands.map((m) => m[0]).join('')}`;
}

/** Uniform struct for the vec4 layout: { n, nvec, scalar operand bits ×4 (for 'uniform' operands) }. */
function vec4Kernel(body: MapBody, operands: readonly OperandMode[]): KernelSpec {
  if (operands.length !== body.inputs.length) throw new Error(`${body.name}: ${operands.length} operand modes for ${body.inputs.length} inputs`);
  const decls: string[] = [];
  const bindings: KernelSpec['bindings'][number][] = [];
  const loads: string[] = [];
  const perElem: string[] = [];
  operands.forEach((mode, i) => {
    const t = body.inputs[i];
    if (mode === 'full') {
      decls.push(`@group(0) @binding(${bindings.length}) var<storage, read> in${i}: array<vec4<${t}>>;`);
      bindings.push('read');
      loads.push(`let a${i} = in${i}[j];`);
      perElem.push(`a${i}.C`);
    } else if (mode === 'scalar') {
      decls.push(`@group(0) @binding(${bindings.length}) var<storage, read> in${i}: array<${t}>;`);
      bindings.push('read');
      perElem.push(`s${i}`);
    } else {
      perElem.push(`s${i}`);
    }
  });
  const scalarInits = operands
    .map((mode, i) => (mode === 'scalar' ? `let s${i} = in${i}[0];` : mode === 'uniform' ? `let s${i} = bitcast<${body.inputs[i]}>(u.bits${i});` : ''))
    .filter(Boolean)
    .join('\n  ');
  const outIdx = bindings.length;
  bindings.push('write', 'uniform');
  const params = body.inputs.map((t, i) => `v${i}: ${t}`).join(', ');
  const call = (c: string) => `op(${perElem.map((p) => p.replace('.C', `.${c}`)).join(', ')})`;
  return {
    key: `${body.name}:${layoutKey({ kind: 'vec4', operands })}`,
    entryPoint: 'main',
    bindings,
    workgroupSize: [LINEAR_WG, 1, 1],
    code: `${WGSL_MATH}
struct U { n: u32, nvec: u32, bits0: u32, bits1: u32, bits2: u32, bits3: u32 }
${decls.join('\n')}
@group(0) @binding(${outIdx}) var<storage, read_write> out: array<vec4<${body.output}>>;
@group(0) @binding(${outIdx + 1}) var<uniform> u: U;
fn op(${params}) -> ${body.output} { return ${body.expr}; }
@compute @workgroup_size(${LINEAR_WG})
fn main(${BUILTINS}) {
  ${linearIndex()}
  let first = gi * ${VEC4_CHUNK}u;
  if (first >= u.nvec) { return; }
  let last = min(first + ${VEC4_CHUNK}u, u.nvec);
  ${scalarInits}
  for (var j = first; j < last; j++) {
    ${loads.join(' ')}
    out[j] = vec4<${body.output}>(${call('x')}, ${call('y')}, ${call('z')}, ${call('w')});
  }
}`,
  };
}

/** Uniform words of the strided layout: n, then shape and one stride array per input, each MAX rank long. */
export function stridedUniformWords(inputs: number): number {
  return 4 + (1 + inputs) * MAX_ELEMENTWISE_RANK;
}

/**
 * Strided layout: each invocation walks STRIDED_CHUNK consecutive outputs with an odometer (one div/mod
 * decode per chunk, then increments), so broadcast operands cost no per-element division.
 */
function stridedKernel(body: MapBody, rank: number): KernelSpec {
  if (rank < 1 || rank > MAX_ELEMENTWISE_RANK) throw new Error(`${body.name}: strided rank ${rank} out of range`);
  const k = body.inputs.length;
  const arr = `array<vec4<u32>, ${MAX_ELEMENTWISE_RANK / 4}>`;
  const comp = (d: number) => `[${d >> 2}].${'xyzw'[d & 3]}`;
  const fields = ['shape', ...body.inputs.map((_, i) => `st${i}`)].map((f) => `${f}: ${arr}`).join(', ');
  const decls = body.inputs.map((t, i) => `@group(0) @binding(${i}) var<storage, read> in${i}: array<${t}>;`).join('\n');
  const consts: string[] = [];
  for (let d = 0; d < rank; d++) {
    consts.push(`let sh${d} = u.shape${comp(d)};`);
    for (let i = 0; i < k; i++) consts.push(`let st${i}_${d} = u.st${i}${comp(d)};`);
  }
  const decode: string[] = ['var rem = first;'];
  for (let d = rank - 1; d >= 0; d--) {
    decode.push(d > 0 ? `var c${d} = rem % sh${d}; rem = rem / sh${d};` : `var c0 = rem;`);
  }
  for (let i = 0; i < k; i++) {
    decode.push(`var o${i} = ${Array.from({ length: rank }, (_, d) => `c${d} * st${i}_${d}`).join(' + ')};`);
  }
  // Increment dim d, carrying into d-1 when it wraps (u32 wrap-around keeps the offsets exact).
  const step = (d: number): string => {
    const adds = body.inputs.map((_, i) => `o${i} += st${i}_${d};`).join(' ');
    if (d === 0) return `c0 += 1u; ${adds}`;
    const resets = body.inputs.map((_, i) => `o${i} -= st${i}_${d} * sh${d};`).join(' ');
    return `c${d} += 1u; ${adds} if (c${d} == sh${d}) { c${d} = 0u; ${resets} ${step(d - 1)} }`;
  };
  const args = body.inputs.map((_, i) => `in${i}[o${i}]`).join(', ');
  const params = body.inputs.map((t, i) => `v${i}: ${t}`).join(', ');
  return {
    key: `${body.name}:${layoutKey({ kind: 'strided', rank })}`,
    entryPoint: 'main',
    bindings: [...body.inputs.map(() => 'read' as const), 'write', 'uniform'],
    workgroupSize: [LINEAR_WG, 1, 1],
    code: `${WGSL_MATH}
struct U { n: u32, p0: u32, p1: u32, p2: u32, ${fields} }
${decls}
@group(0) @binding(${k}) var<storage, read_write> out: array<${body.output}>;
@group(0) @binding(${k + 1}) var<uniform> u: U;
fn op(${params}) -> ${body.output} { return ${body.expr}; }
@compute @workgroup_size(${LINEAR_WG})
fn main(${BUILTINS}) {
  ${linearIndex()}
  let first = gi * ${STRIDED_CHUNK}u;
  if (first >= u.n) { return; }
  let last = min(first + ${STRIDED_CHUNK}u, u.n);
  ${consts.join('\n  ')}
  ${decode.join('\n  ')}
  for (var e = first; e < last; e++) {
    out[e] = op(${args});
    ${step(rank - 1)}
  }
}`,
  };
}

/**
 * Specs are memoised by their key (the key already names the code: the device caches pipelines by it), so the
 * hot path of every elementwise op does not rebuild a few KB of WGSL per call (~5–10 µs of JS each time).
 */
const mapKernelCache = new Map<string, KernelSpec>();

function mapKernel(body: MapBody, layout: ElementwiseLayout): KernelSpec {
  const key = `${body.name}:${layoutKey(layout)}`;
  let spec = mapKernelCache.get(key);
  if (!spec) {
    spec = layout.kind === 'vec4' ? vec4Kernel(body, layout.operands) : stridedKernel(body, layout.rank);
    mapKernelCache.set(key, spec);
  }
  return spec;
}

export interface UnaryKey {
  op: UnaryOpName;
  dtype: DType;
}

/** out = op(x), x contiguous. Uniform: { n, nvec }. Dispatch: linearDispatch(nvec, VEC4_CHUNK). */
export function unaryKernel(key: UnaryKey): KernelSpec {
  return mapKernel(
    { name: `unary:${key.op}:${key.dtype}`, inputs: [key.dtype], output: key.dtype, expr: unaryExpr(key.op, key.dtype) },
    { kind: 'vec4', operands: ['full'] },
  );
}

export interface BinaryKey {
  op: BinaryOpName;
  dtype: DType;
  layout: ElementwiseLayout;
}

/** out = op(a, b); compare ops write f32 0/1. */
export function binaryKernel(key: BinaryKey): KernelSpec {
  const isCompare = (COMPARE_OP_NAMES as readonly string[]).includes(key.op);
  return mapKernel(
    {
      name: `binary:${key.op}:${key.dtype}`,
      inputs: [key.dtype, key.dtype],
      output: isCompare ? 'f32' : key.dtype,
      expr: binaryExpr(key.op, key.dtype),
    },
    key.layout,
  );
}

/**
 * a·x + b·y over two same-shape contiguous f32 tensors, with a and b in the uniform block (bits2, bits3): one
 * dispatch for the linear combinations that optimisers and parameter-tree arithmetic do on every step.
 */
export function axpbyKernel(): KernelSpec {
  return mapKernel(
    { name: 'axpby:f32', inputs: ['f32', 'f32', 'f32', 'f32'], output: 'f32', expr: 'v2 * v0 + v3 * v1' },
    { kind: 'vec4', operands: ['full', 'full', 'uniform', 'uniform'] },
  );
}

/** relu's VJP in one kernel: gy where x > 0, else 0 (f32, any elementwise layout: gy and x may broadcast). */
export function reluGradKernel(layout: ElementwiseLayout): KernelSpec {
  return mapKernel({ name: 'reluGrad:f32', inputs: ['f32', 'f32'], output: 'f32', expr: 'select(0.0, v0, v1 > 0.0)' }, layout);
}

export interface WhereKey {
  condDtype: DType;
  dtype: DType;
  layout: ElementwiseLayout;
}

/** out = cond != 0 ? a : b (a NaN condition counts as true, ±0 as false). */
export function whereKernel(key: WhereKey): KernelSpec {
  const truth = key.condDtype === 'f32' ? '(bitcast<u32>(v0) & 0x7fffffffu) != 0u' : `v0 != ${key.condDtype}(0)`;
  return mapKernel(
    { name: `where:${key.condDtype}:${key.dtype}`, inputs: [key.condDtype, key.dtype, key.dtype], output: key.dtype, expr: `select(v2, v1, ${truth})` },
    key.layout,
  );
}

export interface CastKey {
  from: DType;
  to: DType;
}

/** Float → int truncates toward zero and saturates (NaN → 0); i32 ↔ u32 reinterprets bits. */
export function castKernel(key: CastKey): KernelSpec {
  return mapKernel(
    { name: `cast:${key.from}:${key.to}`, inputs: [key.from], output: key.to, expr: castExpr(key.from, key.to) },
    { kind: 'vec4', operands: ['full'] },
  );
}
