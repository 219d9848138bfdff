/** @file WGSL generators for elementwise kernels: unary math, broadcasting binary/compare ops, where, cast. */
import { LINEAR_WG } from './basic';
import { memoKernel, type KernelIR } from './render';
import type { DType, KernelSpec } from './types';

export const UNARY_OP_NAMES = [
  'neg',
  'exp',
  'log',
  'log1p',
  'expm1',
  'sin',
  'cos',
  'tanh',
  'sigmoid',
  'sqrt',
  'rsqrt',
  'recip',
  'abs',
  'sign',
  'relu',
  'square',
  'floor',
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

/** The scalar WGSL expression of a unary op over `v0` (shared with the fused kernels, so both round alike). */
export function unaryExpr(op: UnaryOpName, dtype: DType): string {
  const isFloat = dtype === 'f32';
  switch (op) {
    case 'neg':
      return '-v0';
    case 'exp':
      return 'exp(v0)';
    case 'log':
      return 'mg_log(v0)';
    case 'log1p':
      return 'mg_log1p(v0)';
    case 'expm1':
      return 'mg_expm1(v0)';
    case 'sin':
      return 'sin(v0)';
    case 'cos':
      return 'cos(v0)';
    case 'tanh':
      return 'mg_tanh(v0)';
    case 'sigmoid':
      return 'mg_sigmoid(v0)';
    case 'sqrt':
      return 'mg_sqrt(v0)';
    case 'rsqrt':
      return '1.0 / mg_sqrt(v0)';
    case 'recip':
      return '1.0 / v0';
    case 'abs':
      return 'abs(v0)';
    case 'sign':
      return isFloat ? 'mg_sign(v0)' : 'sign(v0)';
    case 'relu':
      return isFloat ? 'mg_relu(v0)' : `max(v0, ${dtype}(0))`;
    case 'square':
      return 'v0 * v0';
    case 'floor':
      return 'floor(v0)';
  }
}

/** The scalar WGSL expression of a binary op over `v0`, `v1` (shared with the fused kernels). */
export function binaryExpr(op: BinaryOpName, dtype: DType): string {
  const isFloat = dtype === 'f32';
  // WGSL lets implementations assume no NaNs (SwiftShader answers NaN != 0 with false), so f32 compares test NaN
  // by its bits: every compare with a NaN is false except `ne`, as in IEEE 754 and torch.
  const nan = 'mg_isnan(v0) || mg_isnan(v1)';
  const cmp = (c: string) =>
    !isFloat ? `select(0.0, 1.0, v0 ${c} v1)` : c === '!=' ? `select(0.0, 1.0, v0 != v1 || ${nan})` : `select(0.0, 1.0, v0 ${c} v1 && !(${nan}))`;
  switch (op) {
    case 'add':
      return 'v0 + v1';
    case 'sub':
      return 'v0 - v1';
    case 'mul':
      return 'v0 * v1';
    case 'div':
      return 'v0 / v1';
    case 'pow':
      return 'mg_pow(v0, v1)';
    case 'maximum':
      return isFloat ? 'mg_max(v0, v1)' : 'max(v0, v1)';
    case 'minimum':
      return isFloat ? 'mg_min(v0, v1)' : 'min(v0, v1)';
    case 'eq':
      return cmp('==');
    case 'ne':
      return cmp('!=');
    case 'lt':
      return cmp('<');
    case 'le':
      return cmp('<=');
    case 'gt':
      return cmp('>');
    case 'ge':
      return cmp('>=');
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

/** The scalar function a map kernel applies per element: `fn op(v0, v1, …) -> output`. */
function opFunction(body: MapBody): string {
  const params = body.inputs.map((t, i) => `v${i}: ${t}`).join(', ');
  return `fn op(${params}) -> ${body.output} { return ${body.expr}; }`;
}

/**
 * vec4 layout: each invocation maps VEC4_CHUNK contiguous vec4s. 'full' operands are read as vec4s, 'scalar' ones
 * splat element 0, 'uniform' ones are host scalars in the uniform word bits<i>. Uniform: { n, nvec, bits0..3 }.
 */
function vec4Kernel(body: MapBody, operands: readonly OperandMode[]): KernelIR {
  if (operands.length !== body.inputs.length) throw new Error(`${body.name}: ${operands.length} operand modes for ${body.inputs.length} inputs`);
  const arg = (i: number, c: string) => (operands[i] === 'full' ? `a${i}.${c}` : `s${i}`);
  const call = (c: string) => `op(${operands.map((_, i) => arg(i, c)).join(', ')})`;
  const splats = operands.map((m, i) =>
    m === 'scalar' ? `let s${i} = in${i}[0];` : m === 'uniform' ? `let s${i} = bitcast<${body.inputs[i]}>(u.bits${i});` : '',
  );
  const loads = operands.map((m, i) => (m === 'full' ? `let a${i} = in${i}[j];` : ''));
  return {
    name: `${body.name}:${layoutKey({ kind: 'vec4', operands })}`,
    inputs: operands.flatMap((m, i) => (m === 'uniform' ? [] : [{ name: `in${i}`, dtype: body.inputs[i], vec: m === 'full' ? 4 : undefined }])),
    outputs: [{ name: 'out', dtype: body.output, vec: 4 }],
    uniforms: ['n', 'nvec', 'bits0', 'bits1', 'bits2', 'bits3'].map((f) => [f, 'u32'] as const),
    workgroupSize: LINEAR_WG,
    functions: opFunction(body),
    body: [
      `let first = gi * ${VEC4_CHUNK}u;`,
      'if (first >= u.nvec) { return; }',
      `let last = min(first + ${VEC4_CHUNK}u, u.nvec);`,
      ...splats.filter(Boolean),
      'for (var j = first; j < last; j++) {',
      ...loads.filter(Boolean).map((l) => `  ${l}`),
      `  out[j] = vec4<${body.output}>(${call('x')}, ${call('y')}, ${call('z')}, ${call('w')});`,
      '}',
    ].join('\n  '),
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
function stridedKernel(body: MapBody, rank: number): KernelIR {
  if (rank < 1 || rank > MAX_ELEMENTWISE_RANK) throw new Error(`${body.name}: strided rank ${rank} out of range`);
  const ins = body.inputs.map((_, i) => i);
  const arr = `array<vec4<u32>, ${MAX_ELEMENTWISE_RANK / 4}>`;
  const comp = (d: number) => `[${d >> 2}].${'xyzw'[d & 3]}`;
  const consts: string[] = [];
  for (let d = 0; d < rank; d++) {
    consts.push(`let sh${d} = u.shape${comp(d)};`);
    for (const i of ins) consts.push(`let st${i}_${d} = u.st${i}${comp(d)};`);
  }
  const decode: string[] = ['var rem = first;'];
  for (let d = rank - 1; d >= 0; d--) decode.push(d > 0 ? `var c${d} = rem % sh${d}; rem = rem / sh${d};` : `var c0 = rem;`);
  for (const i of ins) decode.push(`var o${i} = ${Array.from({ length: rank }, (_, d) => `c${d} * st${i}_${d}`).join(' + ')};`);
  // Increment dim d, carrying into d-1 when it wraps (u32 wrap-around keeps the offsets exact).
  const step = (d: number): string => {
    const adds = ins.map((i) => `o${i} += st${i}_${d};`).join(' ');
    if (d === 0) return `c0 += 1u; ${adds}`;
    const resets = ins.map((i) => `o${i} -= st${i}_${d} * sh${d};`).join(' ');
    return `c${d} += 1u; ${adds} if (c${d} == sh${d}) { c${d} = 0u; ${resets} ${step(d - 1)} }`;
  };
  return {
    name: `${body.name}:${layoutKey({ kind: 'strided', rank })}`,
    inputs: body.inputs.map((dtype, i) => ({ name: `in${i}`, dtype })),
    outputs: [{ name: 'out', dtype: body.output }],
    uniforms: [...['n', 'p0', 'p1', 'p2'].map((f) => [f, 'u32'] as const), ['shape', arr], ...ins.map((i) => [`st${i}`, arr] as const)],
    workgroupSize: LINEAR_WG,
    functions: opFunction(body),
    body: `let first = gi * ${STRIDED_CHUNK}u;
  if (first >= u.n) { return; }
  let last = min(first + ${STRIDED_CHUNK}u, u.n);
  ${consts.join('\n  ')}
  ${decode.join('\n  ')}
  for (var e = first; e < last; e++) {
    out[e] = op(${ins.map((i) => `in${i}[o${i}]`).join(', ')});
    ${step(rank - 1)}
  }`,
  };
}

/** Specs memoised by name and layout (both name every parameter of the generated code). */
const mapKernelCache = new Map<string, KernelSpec>();

function mapKernel(body: MapBody, layout: ElementwiseLayout): KernelSpec {
  return memoKernel(mapKernelCache, `${body.name}:${layoutKey(layout)}`, () =>
    layout.kind === 'vec4' ? vec4Kernel(body, layout.operands) : stridedKernel(body, layout.rank),
  );
}

export interface UnaryKey {
  op: UnaryOpName;
  dtype: DType;
}

/** out = op(x), x contiguous. Uniform: { n, nvec }. Dispatch: linearDispatch(nvec, VEC4_CHUNK). */
export function unaryKernel(key: UnaryKey): KernelSpec {
  return mapKernel(
    {
      name: `unary:${key.op}:${key.dtype}`,
      inputs: [key.dtype],
      output: key.dtype,
      expr: unaryExpr(key.op, key.dtype),
    },
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
    {
      name: `where:${key.condDtype}:${key.dtype}`,
      inputs: [key.condDtype, key.dtype, key.dtype],
      output: key.dtype,
      expr: `select(v2, v1, ${truth})`,
    },
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
