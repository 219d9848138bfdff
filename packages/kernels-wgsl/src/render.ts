/** @file The one kernel renderer: a small typed kernel description in, WGSL + binding layout + cache key out. */
import { WGSL_HELPERS, type HelperName } from './wgsl-math';
import { gridLinearIndex, type BindingKind, type DType, type KernelSpec } from './types';

/** A storage buffer the kernel reads (inputs) or writes (outputs), declared `array<T>` or `array<vecN<T>>`. */
export interface BufferParam {
  readonly name: string;
  readonly dtype: DType;
  /** Elements are vecN<dtype> (vector loads and stores). */
  readonly vec?: 2 | 4;
  /** Elements are atomic<dtype> (u32/i32 only), e.g. the index-flag words. */
  readonly atomic?: boolean;
  /** A fixed-length array (`array<T, length>`) instead of a runtime-sized one. */
  readonly length?: number;
  /** Inputs only: 'read_write' for a buffer updated in place (bound once, read and written). Default 'read'. */
  readonly access?: 'read' | 'read_write';
}

/**
 * Everything that shapes a kernel's WGSL. The body is the entry point's statements; it may use `gi` (the linear
 * invocation index over a grid1d of 1-D workgroups) and the builtins `wid`, `lid`, `nwg`, `gid`, `li` by those names,
 * and any `mg_*` helper of WGSL_HELPERS: the renderer declares exactly what it finds.
 */
export interface KernelIR {
  /** Readable family and parameters, e.g. `binary:add:f32:v4:ff`: the key's prefix and the pipeline's label. */
  readonly name: string;
  /** Bound first, in this order; a name given twice is bound once (read_write if either use is). */
  readonly inputs: readonly BufferParam[];
  /** Bound after the inputs, always read_write. */
  readonly outputs: readonly BufferParam[];
  /** Fields of `struct U`, bound last as `u` (no uniform binding when empty). Types are WGSL types. */
  readonly uniforms?: readonly (readonly [name: string, type: string])[];
  readonly workgroupSize: number | readonly [number, number, number];
  /** Module-scope WGSL after the declarations (e.g. the scalar `fn op` an elementwise body maps). */
  readonly functions?: string;
  readonly body: string;
}

/** Uniform fields of one type from a space-separated list of names: `fields('n H W')`. */
export function fields(names: string, type = 'u32'): [string, string][] {
  return names.split(' ').map((n) => [n, type]);
}

/** The builtins a body may name, with their WGSL declarations. */
const BUILTINS = {
  wid: ['workgroup_id', 'vec3<u32>'],
  lid: ['local_invocation_id', 'vec3<u32>'],
  nwg: ['num_workgroups', 'vec3<u32>'],
  gid: ['global_invocation_id', 'vec3<u32>'],
  li: ['local_invocation_index', 'u32'],
} as const;
type BuiltinName = keyof typeof BUILTINS;

/** Helpers named in `code` plus, transitively, the helpers they call, in table order. */
export function helpersUsed(code: string): HelperName[] {
  const table = WGSL_HELPERS as Record<string, string>;
  const seen = new Set<string>();
  const visit = (src: string): void => {
    for (const [name] of src.matchAll(/\bmg_\w+\b/g)) {
      if (seen.has(name)) continue;
      if (!(name in table)) throw new Error(`renderKernel: unknown WGSL helper ${name}`);
      seen.add(name);
      visit(table[name]);
    }
  };
  visit(code);
  return (Object.keys(table) as HelperName[]).filter((n) => seen.has(n));
}

/** Inputs with repeated names merged (one binding, read_write if any use is); mismatched element types throw. */
function dedupe(name: string, inputs: readonly BufferParam[]): BufferParam[] {
  const byName = new Map<string, BufferParam>();
  for (const p of inputs) {
    const prev = byName.get(p.name);
    if (!prev) {
      byName.set(p.name, p);
    } else if (arrayType(prev) !== arrayType(p)) {
      throw new Error(`${name}: input ${p.name} given as both ${arrayType(prev)} and ${arrayType(p)}`);
    } else if (p.access === 'read_write') {
      byName.set(p.name, { ...prev, access: 'read_write' });
    }
  }
  return [...byName.values()];
}

/** The buffer's WGSL type: `array<T>`, `array<vecN<T>>`, `array<atomic<T>, length>`… */
const arrayType = (p: BufferParam): string => {
  const t = p.atomic ? `atomic<${p.dtype}>` : p.vec ? `vec${p.vec}<${p.dtype}>` : p.dtype;
  return `array<${t}${p.length ? `, ${p.length}` : ''}>`;
};

/** 53-bit string hash (cyrb53), base 36: the key's signature part. */
function hash53(s: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}

/**
 * Renders a kernel. Bindings run inputs, outputs, uniform; the declarations, `spec.bindings`, `struct U`, the
 * entry point's builtins and the helper preamble all come from the IR, and `spec.key` is `name:` plus a hash of
 * the code and layout, so two specs share a key (and a cached pipeline) exactly when they are the same kernel.
 */
export function renderKernel(ir: KernelIR): KernelSpec {
  const inputs = dedupe(ir.name, ir.inputs);
  const taken = new Set(inputs.map((p) => p.name));
  for (const p of ir.outputs) {
    if (taken.has(p.name)) throw new Error(`${ir.name}: output ${p.name} is also an input (declare the input read_write instead)`);
    taken.add(p.name);
  }
  const uniforms = ir.uniforms ?? [];
  const bindings: BindingKind[] = [];
  const decls: string[] = [];
  const storage = (p: BufferParam, access: 'read' | 'read_write') => {
    decls.push(`@group(0) @binding(${bindings.length}) var<storage, ${access}> ${p.name}: ${arrayType(p)};`);
    bindings.push(access === 'read' ? 'read' : 'write');
  };
  for (const p of inputs) storage(p, p.access ?? 'read');
  for (const p of ir.outputs) storage(p, 'read_write');
  if (uniforms.length) {
    decls.unshift(`struct U { ${uniforms.map(([n, t]) => `${n}: ${t}`).join(', ')} }`);
    decls.push(`@group(0) @binding(${bindings.length}) var<uniform> u: U;`);
    bindings.push('uniform');
  }

  const [wx, wy, wz] = typeof ir.workgroupSize === 'number' ? [ir.workgroupSize, 1, 1] : ir.workgroupSize;
  const usesGi = /\bgi\b/.test(ir.body);
  const prologue = usesGi ? [gridLinearIndex(wx)] : [];
  const builtins = (Object.keys(BUILTINS) as BuiltinName[]).filter(
    (b) => new RegExp(`\\b${b}\\b`).test(ir.body) || (usesGi && (b === 'wid' || b === 'lid' || b === 'nwg')),
  );
  const params = builtins.map((b) => `@builtin(${BUILTINS[b][0]}) ${b}: ${BUILTINS[b][1]}`).join(', ');

  const functions = ir.functions ?? '';
  const helpers = helpersUsed(`${functions}\n${ir.body}`).map((h) => WGSL_HELPERS[h]);
  const code = [
    ...helpers,
    ...decls,
    ...(functions ? [functions] : []),
    `@compute @workgroup_size(${wx}, ${wy}, ${wz})`,
    `fn main(${params}) {`,
    ...prologue.map((l) => `  ${l}`),
    `  ${ir.body.trim()}`,
    '}',
  ].join('\n');
  const workgroupSize = [wx, wy, wz] as const;
  return {
    key: `${ir.name}:${hash53(`${code}|${bindings.join(',')}`)}`,
    entryPoint: 'main',
    bindings,
    workgroupSize,
    code,
  };
}

/**
 * Memoises a generator's spec by a structural key that must name every parameter the builder reads: the hot
 * path of every op then costs a map lookup (~0.4 µs), not a few KB of WGSL and a hash (1–30 µs of JS).
 */
export function memoKernel(cache: Map<string, KernelSpec>, key: string, build: () => KernelIR): KernelSpec {
  let spec = cache.get(key);
  if (!spec) {
    spec = renderKernel(build());
    cache.set(key, spec);
  }
  return spec;
}
