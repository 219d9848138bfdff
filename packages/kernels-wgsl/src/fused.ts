/** @file Fused elementwise kernels: one SSA program over f32 leaves and uniform scalars, rendered by renderKernel. */
import { LINEAR_WG } from './basic';
import { binaryExpr, unaryExpr, MAX_ELEMENTWISE_RANK, type ArithOpName, type UnaryOpName } from './elementwise';
import { memoKernel, type BufferParam, type KernelIR } from './render';
import type { KernelSpec } from './types';

/** Ops a fused program may apply: the f32 unary and arithmetic binary ops, relu's VJP, and the identity (a lazy expand). */
export type FusedOp = UnaryOpName | ArithOpName | 'reluGrad' | 'copy';

/**
 * How a leaf buffer is read: 'full' (contiguous, same element count as the output), 'scalar' (element 0
 * splatted) or 'strided' (broadcast through per-dim strides over the folded output shape). 'acc' only in an
 * epilogue program (fusedEpilogue): the host kernel's own value at the element (a matmul's accumulator), no binding.
 */
export type FusedLeafMode = 'full' | 'scalar' | 'strided' | 'acc';

/** An SSA value: leaf read `l<k>`, uniform scalar `s<k>`, or temporary `t<k>`. */
export type FusedRef = `l${number}` | `s${number}` | `t${number}`;

/**
 * A fused elementwise program. `reads[k]` says which binding (`in<binding>`) leaf k reads and how; `steps` are
 * SSA temporaries in order; `outputs` lists the temporaries written (all full-size, contiguous). Only structure,
 * never data values: the key and so the pipeline are shared across shapes and scalar values.
 */
export interface FusedProgram {
  readonly bindings: number;
  readonly reads: readonly { readonly binding: number; readonly mode: FusedLeafMode }[];
  readonly scalars: number;
  /** Folded output rank (used by strided reads; 0 when none is strided: then the kernel walks vec4s). */
  readonly rank: number;
  readonly steps: readonly { readonly op: FusedOp; readonly args: readonly FusedRef[] }[];
  readonly outputs: readonly number[];
}

/** Elements per invocation of a strided fused kernel; vec4s per invocation of a contiguous one (rank 0). */
export const FUSED_CHUNK = 4;

function opExpr(op: FusedOp): string {
  if (op === 'reluGrad') return 'select(0.0, v0, v1 > 0.0)';
  if (op === 'copy') return 'v0';
  if ((['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum'] as string[]).includes(op)) return binaryExpr(op as ArithOpName, 'f32');
  return unaryExpr(op as UnaryOpName, 'f32');
}

/** Arity of a fused op. */
export function fusedArity(op: FusedOp): 1 | 2 {
  return op === 'reluGrad' || (['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum'] as string[]).includes(op) ? 2 : 1;
}

/** The structural key of a program (names every parameter the builder reads). */
export function fusedKey(p: FusedProgram): string {
  const reads = p.reads.map((r) => `${r.binding}${r.mode[0]}`).join(',');
  const steps = p.steps.map((s) => `${s.op}(${s.args.join(',')})`).join(';');
  return `fused:b${p.bindings}:r${p.rank}:s${p.scalars}:[${reads}]:[${steps}]:o${p.outputs.join(',')}`;
}

/**
 * Uniform words: n, 3 pad, then (if any read is strided) the folded shape and one stride array per strided read,
 * each MAX_ELEMENTWISE_RANK long, then the scalars' f32 bits padded to a multiple of 4.
 */
/**
 * rank 0 (no strided read): like the eager vec4 kernels, each invocation maps FUSED_CHUNK contiguous vec4s, the SSA
 * program evaluated once per lane. Uniform: n, nvec (p0), 2 pad, then the scalars' bits.
 */
function buildFusedVec4(p: FusedProgram): KernelIR {
  const vecBinding = new Set(p.reads.filter((r) => r.mode === 'full').map((r) => r.binding));
  const uniforms: [string, string][] = [
    ['n', 'u32'],
    ['p0', 'u32'],
    ['p1', 'u32'],
    ['p2', 'u32'],
  ];
  if (p.scalars) uniforms.push(['sc', `array<vec4<u32>, ${Math.ceil(p.scalars / 4)}>`]);
  const lines: string[] = [`let first = gi * ${FUSED_CHUNK}u;`, 'if (first >= u.p0) { return; }', `let last = min(first + ${FUSED_CHUNK}u, u.p0);`];
  for (let k = 0; k < p.scalars; k++) lines.push(`let s${k} = bitcast<f32>(u.sc[${k >> 2}].${'xyzw'[k & 3]});`);
  p.reads.forEach((r, k) => {
    if (r.mode === 'scalar') lines.push(`let l${k} = in${r.binding}[0]${vecBinding.has(r.binding) ? '.x' : ''};`);
  });
  lines.push('for (var j = first; j < last; j++) {');
  p.reads.forEach((r, k) => {
    if (r.mode === 'full') lines.push(`  let a${k} = in${r.binding}[j];`);
  });
  const lanes = ['x', 'y', 'z', 'w'];
  const laneRef = (ref: string, c: string) => (ref[0] === 't' || (ref[0] === 'l' && p.reads[Number(ref.slice(1))].mode === 'full') ? `${ref}_${c}` : ref);
  for (const c of lanes) {
    p.reads.forEach((r, k) => {
      if (r.mode === 'full') lines.push(`  let l${k}_${c} = a${k}.${c};`);
    });
    p.steps.forEach((st, j) => {
      const expr = opExpr(st.op).replace(/\bv([01])\b/g, (_, i: string) => laneRef(st.args[Number(i)], c));
      lines.push(`  let t${j}_${c} = ${expr};`);
    });
  }
  p.outputs.forEach((t, i) => lines.push(`  out${i}[j] = vec4<f32>(${lanes.map((c) => `t${t}_${c}`).join(', ')});`));
  lines.push('}');
  return {
    name: `fused4:${p.outputs.length}`,
    inputs: Array.from({ length: p.bindings }, (_, b) => ({
      name: `in${b}`,
      dtype: 'f32' as const,
      vec: vecBinding.has(b) ? (4 as const) : undefined,
    })),
    outputs: p.outputs.map((_, i) => ({ name: `out${i}`, dtype: 'f32' as const, vec: 4 as const })),
    uniforms,
    workgroupSize: LINEAR_WG,
    body: lines.join('\n  '),
  };
}

function buildFused(p: FusedProgram): KernelIR {
  if (p.rank === 0) return buildFusedVec4(p);
  const arr = (len: number) => `array<vec4<u32>, ${len}>`;
  const comp = (field: string, d: number) => `u.${field}[${d >> 2}].${'xyzw'[d & 3]}`;
  const strided = p.reads.map((r, k) => (r.mode === 'strided' ? k : -1)).filter((k) => k >= 0);
  const uniforms: [string, string][] = [
    ['n', 'u32'],
    ['p0', 'u32'],
    ['p1', 'u32'],
    ['p2', 'u32'],
  ];
  if (strided.length) {
    uniforms.push(['shape', arr(MAX_ELEMENTWISE_RANK / 4)]);
    for (const k of strided) uniforms.push([`st${k}`, arr(MAX_ELEMENTWISE_RANK / 4)]);
  }
  if (p.scalars) uniforms.push(['sc', arr(Math.ceil(p.scalars / 4))]);
  const lines: string[] = [];
  for (let k = 0; k < p.scalars; k++) lines.push(`let s${k} = bitcast<f32>(${comp('sc', k)});`);
  lines.push(`let first = gi * ${FUSED_CHUNK}u;`, `let last = min(first + ${FUSED_CHUNK}u, u.n);`, 'for (var e = first; e < last; e++) {');
  if (strided.length) {
    lines.push('  var rem = e;');
    for (const k of strided) lines.push(`  var o${k} = 0u;`);
    for (let d = p.rank - 1; d >= 0; d--) {
      lines.push(
        `  { let c = rem % ${comp('shape', d)}; rem = rem / ${comp('shape', d)};${strided.map((k) => ` o${k} += c * ${comp(`st${k}`, d)};`).join('')} }`,
      );
    }
  }
  p.reads.forEach((r, k) => lines.push(`  let l${k} = in${r.binding}[${r.mode === 'full' ? 'e' : r.mode === 'scalar' ? '0u' : `o${k}`}];`));
  p.steps.forEach((s, j) => {
    const expr = opExpr(s.op).replace(/\bv([01])\b/g, (_, i: string) => s.args[Number(i)]);
    lines.push(`  let t${j} = ${expr};`);
  });
  p.outputs.forEach((t, i) => lines.push(`  out${i}[e] = t${t};`));
  lines.push('}');
  return {
    name: `fused:${p.outputs.length}`,
    inputs: Array.from({ length: p.bindings }, (_, b) => ({ name: `in${b}`, dtype: 'f32' as const })),
    outputs: p.outputs.map((_, i) => ({ name: `out${i}`, dtype: 'f32' as const })),
    uniforms,
    workgroupSize: LINEAR_WG,
    body: lines.join('\n  '),
  };
}

/**
 * A fused program evaluated inside another kernel (a reduction's prologue): module-scope WGSL functions
 * `pl(e: u32) -> f32` (the value at linear element e of the program's output shape) and `pl4(q: u32) -> vec4<f32>`
 * (elements 4q .. 4q + 3), for the host kernel's loads. `outputs[0]` is the value returned; each further output
 * `outputs[i]` is also stored at `pout<i-1>[e]` by every call (extra outputs: every element the host loads is written).
 * Leaf bindings are `pin<b>` (vec4 arrays), written after the host's own inputs; the uniform fields `pshape`, `pst<k>`
 * and `psc` go after the host's fields (16-byte aligned: the host pads its words to a multiple of 4, then appends
 * the program's words: folded shape and strides when rank > 0, then the scalars; see `fusedKernel`).
 */
export interface FusedLoad {
  readonly inputs: readonly BufferParam[];
  readonly outputs: readonly BufferParam[];
  readonly uniforms: readonly [string, string][];
  readonly functions: string;
}

export function fusedLoad(p: FusedProgram): FusedLoad {
  return fusedFunctions(p, false, false, false);
}

/**
 * A fused program applied to a host kernel's results as it stores them (an epilogue, e.g. a matmul's bias add and
 * activation): `fn ep(e: u32, acc: f32) -> f32` and `fn ep4(q: u32, acc: vec4<f32>) -> vec4<f32>` evaluate the program
 * at linear output element e (elements 4q .. 4q + 3) with the read of mode 'acc' taking the host's value `acc`, and
 * return `outputs[0]`; further outputs are stored at `pout<i-1>[e]`, and with `raw` the host value itself at the last
 * `pout` (the raw product is live too). Bindings, uniform fields and words as in fusedLoad.
 */
export function fusedEpilogue(p: FusedProgram, raw: boolean, rowCol = false): FusedLoad {
  if (p.reads.filter((r) => r.mode === 'acc').length !== 1) throw new Error('fused epilogue: needs exactly one acc read');
  if (rowCol && p.rank !== 2) throw new Error('fused epilogue: rowCol needs a folded rank of 2');
  return fusedFunctions(p, true, raw, rowCol);
}

/*
 * rowCol (epilogues): the folded output shape is [rows, N] with the host's N, and the host passes each element's
 * linear row `er` and column `ec`, so strided reads are er·st[0] + ec·st[1] without the per-element integer divisions of the
 * general decode (scalarised, hence slow, on llvmpipe).
 */
function fusedFunctions(p: FusedProgram, epilogue: boolean, raw: boolean, rowCol: boolean): FusedLoad {
  if (p.rank > MAX_ELEMENTWISE_RANK) throw new Error(`fused prologue: rank ${p.rank} > ${MAX_ELEMENTWISE_RANK}`);
  if (!p.outputs.length) throw new Error('fused prologue: no value to load');
  const arr = (len: number) => `array<vec4<u32>, ${len}>`;
  const comp = (field: string, d: number) => `u.${field}[${d >> 2}].${'xyzw'[d & 3]}`;
  const strided = p.reads.map((r, k) => (r.mode === 'strided' ? k : -1)).filter((k) => k >= 0);
  const uniforms: [string, string][] = [];
  if (strided.length) {
    uniforms.push(['pshape', arr(MAX_ELEMENTWISE_RANK / 4)]);
    for (const k of strided) uniforms.push([`pst${k}`, arr(MAX_ELEMENTWISE_RANK / 4)]);
  }
  if (p.scalars) uniforms.push(['psc', arr(Math.ceil(p.scalars / 4))]);
  const scalars = Array.from({ length: p.scalars }, (_, k) => `  let s${k} = bitcast<f32>(${comp('psc', k)});`);
  const subst = (st: { op: FusedOp; args: readonly FusedRef[] }, ref: (r: FusedRef) => string) =>
    opExpr(st.op).replace(/\bv([01])\b/g, (_, i: string) => ref(st.args[Number(i)]));
  const extra = p.outputs.slice(1);
  const [fn1, fn4, arg1, arg4] = epilogue ? ['ep', 'ep4', ', acc: f32, er: u32, ec: u32', ', acc: vec4<f32>, er: u32, ec: u32'] : ['pl', 'pl4', '', ''];
  const rawOut = raw ? extra.length : -1;

  // Scalar load: decode e over the folded shape when a read is strided.
  const one: string[] = [`fn ${fn1}(e: u32${arg1}) -> f32 {`, ...scalars];
  if (strided.length && rowCol) {
    for (const k of strided) one.push(`  let o${k} = er * ${comp(`pst${k}`, 0)} + ec * ${comp(`pst${k}`, 1)};`);
  } else if (strided.length) {
    one.push('  var rem = e;', ...strided.map((k) => `  var o${k} = 0u;`));
    for (let d = p.rank - 1; d >= 0; d--) {
      one.push(
        `  { let c = rem % ${comp('pshape', d)}; rem = rem / ${comp('pshape', d)};${strided.map((k) => ` o${k} += c * ${comp(`pst${k}`, d)};`).join('')} }`,
      );
    }
  }
  p.reads.forEach((r, k) => {
    if (r.mode === 'acc') return one.push(`  let l${k} = acc;`);
    const at = r.mode === 'full' ? 'e' : r.mode === 'strided' ? `o${k}` : '';
    one.push(`  let l${k} = pin${r.binding}${at ? `[${at} >> 2u][${at} & 3u]` : '[0].x'};`);
  });
  p.steps.forEach((st, j) => one.push(`  let t${j} = ${subst(st, (r) => r)};`));
  extra.forEach((t, i) => one.push(`  pout${i}[e] = t${t};`));
  if (raw) one.push(`  pout${rawOut}[e] = acc;`);
  one.push(`  return t${p.outputs[0]};`, '}');

  // vec4 load: full reads as vec4s and the program once per lane; with a strided read, four scalar loads.
  const four: string[] = [`fn ${fn4}(q: u32${arg4}) -> vec4<f32> {`];
  if (strided.length) {
    const a = (c: string, i: number) => (epilogue ? `, acc.${c}, er, ec${i ? ` + ${i}u` : ''}` : '');
    four.push(
      '  let e = 4u * q;',
      `  return vec4<f32>(${fn1}(e${a('x', 0)}), ${fn1}(e + 1u${a('y', 1)}), ${fn1}(e + 2u${a('z', 2)}), ${fn1}(e + 3u${a('w', 3)}));`,
      '}',
    );
  } else {
    four.push(...scalars);
    p.reads.forEach((r, k) => {
      if (r.mode === 'acc') four.push(`  let a${k} = acc;`);
      else four.push(r.mode === 'full' ? `  let a${k} = pin${r.binding}[q];` : `  let l${k} = pin${r.binding}[0].x;`);
    });
    const lanes = ['x', 'y', 'z', 'w'];
    const isVec = (k: number) => p.reads[k].mode === 'full' || p.reads[k].mode === 'acc';
    const laneRef = (ref: FusedRef, c: string) => (ref[0] === 't' || (ref[0] === 'l' && isVec(Number(ref.slice(1)))) ? `${ref}_${c}` : ref);
    lanes.forEach((c, lane) => {
      p.reads.forEach((_r, k) => {
        if (isVec(k)) four.push(`  let l${k}_${c} = a${k}.${c};`);
      });
      p.steps.forEach((st, j) => four.push(`  let t${j}_${c} = ${subst(st, (r) => laneRef(r, c))};`));
      extra.forEach((t, i) => four.push(`  pout${i}[4u * q + ${lane}u] = t${t}_${c};`));
    });
    if (raw) lanes.forEach((c, lane) => four.push(`  pout${rawOut}[4u * q + ${lane}u] = acc.${c};`));
    four.push(`  return vec4<f32>(${lanes.map((c) => `t${p.outputs[0]}_${c}`).join(', ')});`, '}');
  }
  const outputs: BufferParam[] = extra.map((_, i) => ({ name: `pout${i}`, dtype: 'f32' as const }));
  if (raw) outputs.push({ name: `pout${rawOut}`, dtype: 'f32' as const });
  return {
    inputs: Array.from({ length: p.bindings }, (_, b) => ({ name: `pin${b}`, dtype: 'f32' as const, vec: 4 as const })),
    outputs,
    uniforms,
    functions: [...one, ...four].join('\n'),
  };
}

const fusedCache = new Map<string, KernelSpec>();

/**
 * The kernel of a fused program, memoised by its structural key. Dispatch: linearDispatch(n, FUSED_CHUNK) when
 * rank > 0, else linearDispatch(ceil(n / 4), FUSED_CHUNK) with uniform word 1 = ceil(n / 4).
 */
export function fusedKernel(p: FusedProgram): KernelSpec {
  if (p.rank > MAX_ELEMENTWISE_RANK) throw new Error(`fused: rank ${p.rank} > ${MAX_ELEMENTWISE_RANK}`);
  if (fusedCache.size > 4096) fusedCache.clear();
  return memoKernel(fusedCache, fusedKey(p), () => buildFused(p));
}
