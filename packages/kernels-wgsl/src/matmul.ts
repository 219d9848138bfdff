/**
 * @file WGSL generators for batched matmul: register-tiled vec4 (software adapters), workgroup-memory tiled (GPUs),
 * a simple any-shape fallback, and the pad/transpose packing kernel the vec4 variant needs.
 */
import { grid1d, type KernelSpec } from './types';
import { LINEAR_WG } from './basic';
import { fields, memoKernel, type KernelIR } from './render';
import { fusedEpilogue, fusedKey, type FusedProgram } from './fused';

/**
 * Every matmul kernel reads the same uniform block, so the op packs it once whatever the variant.
 * Logical operands are A[M,K] and B[K,N] addressed with element strides (aRs, aCs) and (bRs, bCs), which makes
 * transposes free for the stride-based kernels; the register kernel needs aCs = bCs = 1 and row strides that
 * are multiples of 4 (the op packs operands to get there). Up to 4 (merged) batch dims, innermost last, with
 * element strides per operand (0 where broadcast). rowBase/colBase/batchBase let the op split a dispatch that
 * would exceed 65535 workgroups in a dimension.
 */
export const MATMUL_FIELDS: readonly (readonly [string, string])[] = [
  ...fields('M N K pad0 aRs aCs bRs bCs rowBase colBase batchBase pad1'),
  ...fields('bshape bstrA bstrB', 'vec4<u32>'),
];

/** Element offsets of batch item z in A and B (x, y) and in the contiguous output (z). */
const BATCH_OFFSETS = `fn batchOffsets(z: u32) -> vec3<u32> {
  var rem = z;
  var oa = 0u;
  var ob = 0u;
  for (var d = 3; d >= 0; d--) {
    let i = rem % u.bshape[d];
    rem = rem / u.bshape[d];
    oa += i * u.bstrA[d];
    ob += i * u.bstrB[d];
  }
  return vec3<u32>(oa, ob, z * u.M * u.N);
}`;

const matmulCache = new Map<string, KernelSpec>();
/** Matmul kernels with a fused epilogue (bounded: programs vary). */
const epilogueCache = new Map<string, KernelSpec>();

/**
 * An elementwise program applied to the product as it is stored (lazy fusion's matmul epilogue): its read of mode
 * 'acc' is the product at the output element; C receives `program.outputs[0]`. The program's leaves are bound after
 * A and B (`pin<b>`, vec4 arrays), its extra outputs after C (`pout<i>`, then the raw product when `raw`), its
 * uniform words after the matmul's 24 (see fusedEpilogue). Leaves are indexed by the linear element of the
 * contiguous output [batch, M, N].
 */
export interface MatmulEpilogue {
  readonly program: FusedProgram;
  /** Also store the raw product (a live handle still holds it). */
  readonly raw: boolean;
  /**
   * The program's folded shape is [batch·M, N] (rank 2): strided leaves are addressed from the element's row and
   * column without integer divisions (fusedEpilogue's rowCol). Otherwise the general decode of the linear index.
   */
  readonly rowCol?: boolean;
}

/** A matmul variant: A, B read, C written, the shared uniform block; `extra` is module-scope WGSL. */
function matmulIR(key: MatmulKernelKey, elem: { ab?: 4; c?: 4 }, wg: [number, number], body: string, extra = '', epi?: MatmulEpilogue): KernelIR {
  const ep = epi ? fusedEpilogue(epi.program, epi.raw, epi.rowCol === true) : null;
  return {
    name: matmulKeyString(key) + (epi ? `:epi:${fusedKey(epi.program)}${epi.raw ? ':raw' : ''}${epi.rowCol ? ':rc' : ''}` : ''),
    inputs: [{ name: 'A', dtype: 'f32', vec: elem.ab }, { name: 'B', dtype: 'f32', vec: elem.ab }, ...(ep?.inputs ?? [])],
    outputs: [{ name: 'C', dtype: 'f32', vec: elem.c }, ...(ep?.outputs ?? [])],
    uniforms: ep ? [...MATMUL_FIELDS, ...ep.uniforms] : MATMUL_FIELDS,
    workgroupSize: [wg[0], wg[1], 1],
    functions: `${BATCH_OFFSETS}${extra ? `\n${extra}` : ''}${ep ? `\n${ep.functions}` : ''}`,
    body,
  };
}

/**
 * The store of one output element (index expression `i`, value `v`), through the epilogue when there is one, which
 * also gets the element's linear row `r` (batch·M + row) and column `c`.
 */
const store1 = (epi: MatmulEpilogue | undefined, i: string, v: string, r: string, c: string) =>
  epi ? `{ let ci = ${i}; C[ci] = ep(ci, ${v}, ${r}, ${c}); }` : `C[${i}] = ${v};`;
/** The store of one vec4 of output (vec4 index `q`; `c` the first of its 4 columns). */
const store4 = (epi: MatmulEpilogue | undefined, q: string, v: string, r: string, c: string) =>
  epi ? `{ let cq = ${q}; C[cq] = ep4(cq, ${v}, ${r}, ${c}); }` : `C[${q}] = ${v};`;

/** Number of 32-bit words in the matmul uniform block. */
export const MATMUL_UNIFORM_WORDS = 24;

/** One output per invocation, any strides: correct for every shape, the reference path for odd sizes. */
export interface SimpleMatmulKey {
  kind: 'simple';
}

/**
 * Each invocation computes a rows×cols block with named vec4 accumulators and no workgroup memory: the shape
 * that wins on llvmpipe (8×16 there). A, B, C bound as array<vec4<f32>>; `vecOut` false stores C as scalars so
 * N need not be a multiple of 4 (B is then padded by the op).
 */
export interface RegisterMatmulKey {
  kind: 'register';
  rows: 1 | 2 | 4 | 8;
  cols: 4 | 8 | 16;
  wgX: number;
  wgY: number;
  vecOut: boolean;
  /**
   * B is bound as stored for transB (Bᵀ, [N, K] row-major with K % 4 = 0, row stride u.bCs): each k-step loads one
   * vec4 per output column and transposes 4×4 blocks in registers, which saves the packing dispatch (Linear layers).
   */
  transB?: boolean;
  /**
   * A is bound as stored for transA (Aᵀ, [K, M] row-major with M % 4 = 0 and K % 4 = 0, row stride u.aCs; rows a
   * multiple of 4): each k-step loads one vec4 of 4 output rows per k and transposes 4×4 blocks in registers, which
   * saves the packing dispatch (weight gradients xᵀ·g).
   */
  transA?: boolean;
}

/** Classic shared-memory tiling: a tileM×tileN output tile per workgroup, each thread threadRows×threadCols. */
export interface WorkgroupMatmulKey {
  kind: 'workgroup';
  tileM: number;
  tileN: number;
  tileK: number;
  threadRows: number;
  threadCols: number;
}

export type MatmulKernelKey = SimpleMatmulKey | RegisterMatmulKey | WorkgroupMatmulKey;

export function matmulKeyString(key: MatmulKernelKey): string {
  switch (key.kind) {
    case 'simple':
      return 'matmul:simple:f32';
    case 'register':
      return `matmul:reg:f32:${key.rows}x${key.cols}:wg${key.wgX}x${key.wgY}:${key.vecOut ? 'v4out' : 's1out'}${key.transB ? ':bT' : ''}${key.transA ? ':aT' : ''}`;
    case 'workgroup':
      return `matmul:wg:f32:${key.tileM}x${key.tileN}x${key.tileK}:t${key.threadRows}x${key.threadCols}`;
  }
}

/** Output elements (rows, cols) covered by one workgroup: the op derives the dispatch from this. */
export function matmulWorkgroupTile(key: MatmulKernelKey): [rows: number, cols: number] {
  switch (key.kind) {
    case 'simple':
      return [SIMPLE_WG[1], SIMPLE_WG[0]];
    case 'register':
      return [key.rows * key.wgY, key.cols * key.wgX];
    case 'workgroup':
      return [key.tileM, key.tileN];
  }
}

/**
 * Bindings: A (read), B (read), C (write), uniform — the same order for every variant. With an epilogue: A, B, the
 * epilogue's leaves, C, its extra outputs, uniform (the matmul's 24 words, then the program's).
 */
export function matmulKernel(key: MatmulKernelKey, epilogue?: MatmulEpilogue): KernelSpec {
  const build = () => {
    switch (key.kind) {
      case 'simple':
        return simpleKernel(epilogue);
      case 'register':
        return registerKernel(key, epilogue);
      case 'workgroup':
        return workgroupKernel(key, epilogue);
    }
  };
  if (!epilogue) return memoKernel(matmulCache, matmulKeyString(key), build);
  if (epilogueCache.size > 4096) epilogueCache.clear();
  return memoKernel(epilogueCache, `${matmulKeyString(key)}:epi:${fusedKey(epilogue.program)}:${epilogue.raw}:${epilogue.rowCol === true}`, build);
}

const SIMPLE_WG = [8, 8] as const;

function simpleKernel(epi?: MatmulEpilogue): KernelIR {
  return matmulIR(
    { kind: 'simple' },
    {},
    [SIMPLE_WG[0], SIMPLE_WG[1]],
    `let col = u.colBase + gid.x;
  let row = u.rowBase + gid.y;
  if (row >= u.M || col >= u.N) { return; }
  let off = batchOffsets(u.batchBase + gid.z);
  var ai = off.x + row * u.aRs;
  var bi = off.y + col * u.bCs;
  var acc = 0.0;
  for (var k = 0u; k < u.K; k++) {
    acc = fma(A[ai], B[bi], acc);
    ai += u.aCs;
    bi += u.bRs;
  }
  ${store1(epi, 'off.z + row * u.N + col', 'acc', '(u.batchBase + gid.z) * u.M + row', 'col')}`,
    '',
    epi,
  );
}

function registerKernel(key: RegisterMatmulKey, epi?: MatmulEpilogue): KernelIR {
  const { rows: R, cols, wgX, wgY, vecOut } = key;
  const CV = cols / 4;
  const rs = [...Array(R).keys()];
  const cs = [...Array(CV).keys()];
  const ks = [0, 1, 2, 3];
  const comp = ['x', 'y', 'z', 'w'];
  const lines: string[] = [];
  // Rows past M read row M-1 and columns past N read the last vec4 column, so the loop has no branches;
  // their results are simply not stored.
  const transA = key.transA === true;
  if (transA && R % 4) throw new Error(`${matmulKeyString(key)}: transA needs rows a multiple of 4`);
  const gs = [...Array(Math.ceil(R / 4)).keys()];
  if (transA) {
    // Vec4 column g of Aᵀ's rows holds output rows row0 + 4g .. + 3 (M % 4 = 0: a group is in range or clamped whole).
    for (const g of gs) lines.push(`  let at${g} = aBase + min(row0 / 4u + ${g}u, u.M / 4u - 1u);`);
  } else {
    for (const r of rs) lines.push(`  let ar${r} = aBase + min(row0 + ${r}u, u.M - 1u) * aStride;`);
  }
  const transB = key.transB === true;
  if (transB) {
    // Row of Bᵀ holding output column (col4 + c)·4 + e; columns past N read row N-1 (not stored).
    for (const c of cs) for (const e of ks) lines.push(`  let bt${c}_${e} = bBase + min((col4 + ${c}u) * 4u + ${e}u, u.N - 1u) * btStride;`);
  } else {
    for (const c of cs) lines.push(`  let bc${c} = bBase + min(col4 + ${c}u, lastCol4);`);
  }
  for (const r of rs) for (const c of cs) lines.push(`  var acc${r}_${c} = vec4<f32>(0.0);`);
  const body: string[] = [];
  if (transA) {
    // ta{g}_{kk} = Aᵀ[4k + kk][rows row0 + 4g .. + 3]; a{r} (A's row r over k .. k + 3) gathers lane r % 4.
    for (const g of gs) for (const kk of ks) body.push(`    let ta${g}_${kk} = A[at${g} + (k * 4u + ${kk}u) * atStride];`);
    for (const r of rs) body.push(`    let a${r} = vec4<f32>(${ks.map((kk) => `ta${r >> 2}_${kk}.${comp[r & 3]}`).join(', ')});`);
  } else {
    for (const r of rs) body.push(`    let a${r} = A[ar${r} + k];`);
  }
  if (transB) {
    // t{c}_{e} = Bᵀ[n = 4(col4+c)+e][4k .. 4k+3]; b{kk}_{c} = B[4k+kk][4(col4+c) .. +3] is its transpose.
    for (const c of cs) for (const e of ks) body.push(`    let t${c}_${e} = B[bt${c}_${e} + k];`);
    for (const kk of ks) {
      for (const c of cs) body.push(`    let b${kk}_${c} = vec4<f32>(${ks.map((e) => `t${c}_${e}.${comp[kk]}`).join(', ')});`);
    }
  } else {
    for (const kk of ks) for (const c of cs) body.push(`    let b${kk}_${c} = B[bc${c} + bRow + ${kk}u * bStride];`);
  }
  for (const r of rs) {
    for (const c of cs) {
      let e = `acc${r}_${c}`;
      for (const kk of ks) e = `fma(vec4<f32>(a${r}.${comp[kk]}), b${kk}_${c}, ${e})`;
      body.push(`    acc${r}_${c} = ${e};`);
    }
  }
  const stores: string[] = [];
  for (const r of rs) {
    const inner: string[] = [];
    for (const c of cs) {
      if (vecOut) {
        inner.push(`    if (col4 + ${c}u < nVec) { ${store4(epi, `cRow + col4 + ${c}u`, `acc${r}_${c}`, `zM + row0 + ${r}u`, `(col4 + ${c}u) * 4u`)} }`);
      } else {
        for (let e = 0; e < 4; e++) {
          inner.push(
            `    if ((col4 + ${c}u) * 4u + ${e}u < u.N) { ${store1(epi, `cRow + (col4 + ${c}u) * 4u + ${e}u`, `acc${r}_${c}.${comp[e]}`, `zM + row0 + ${r}u`, `(col4 + ${c}u) * 4u + ${e}u`)} }`,
          );
        }
      }
    }
    stores.push(`  if (row0 + ${r}u < u.M) {\n    let cRow = cBase + (row0 + ${r}u) * ${vecOut ? 'nVec' : 'u.N'};\n${inner.join('\n')}\n  }`);
  }
  return matmulIR(
    key,
    { ab: 4, c: vecOut ? 4 : undefined },
    [wgX, wgY],
    `let row0 = u.rowBase + gid.y * ${R}u;
  let col4 = (u.colBase + gid.x * ${cols}u) / 4u;
  let nVec = (u.N + 3u) / 4u;
  if (row0 >= u.M || col4 >= nVec) { return; }
  let off = batchOffsets(u.batchBase + gid.z);
  let aBase = off.x / 4u;
  let bBase = off.y / 4u;
  let cBase = off.z / ${vecOut ? '4u' : '1u'};
  ${transA ? 'let atStride = u.aCs / 4u;' : 'let aStride = u.aRs / 4u;'}
  let bStride = u.bRs / 4u;
  ${transB ? 'let btStride = u.bCs / 4u;' : 'let lastCol4 = bStride - 1u;'}
  let kSteps = (u.K + 3u) / 4u;
${lines.join('\n')}
  for (var k = 0u; k < kSteps; k++) {
    ${transB ? '' : 'let bRow = k * 4u * bStride;'}
${body.join('\n')}
  }
${epi ? '  let zM = (u.batchBase + gid.z) * u.M;\n' : ''}${stores.join('\n')}`,
    '',
    epi,
  );
}

function workgroupKernel(key: WorkgroupMatmulKey, epi?: MatmulEpilogue): KernelIR {
  const { tileM: TM, tileN: TN, tileK: TK, threadRows: TR, threadCols: TC } = key;
  const wgX = TN / TC;
  const wgY = TM / TR;
  const threads = wgX * wgY;
  if (!Number.isInteger(wgX) || !Number.isInteger(wgY) || (TM * TK) % threads || (TK * TN) % threads) {
    throw new Error(`${matmulKeyString(key)}: tile sizes must divide evenly among ${wgX}×${wgY} threads`);
  }
  const tiles = `var<workgroup> As: array<f32, ${TK * TM}>;
var<workgroup> Bs: array<f32, ${TK * TN}>;`;
  return matmulIR(
    key,
    {},
    [wgX, wgY],
    `let row0 = u.rowBase + wid.y * ${TM}u;
  let col0 = u.colBase + wid.x * ${TN}u;
  let off = batchOffsets(u.batchBase + wid.z);
  var acc: array<f32, ${TR * TC}>;
  for (var k0 = 0u; k0 < u.K; k0 += ${TK}u) {
    for (var i = li; i < ${TM * TK}u; i += ${threads}u) {
      let m = i / ${TK}u;
      let k = i % ${TK}u;
      var v = 0.0;
      if (row0 + m < u.M && k0 + k < u.K) { v = A[off.x + (row0 + m) * u.aRs + (k0 + k) * u.aCs]; }
      As[k * ${TM}u + m] = v;
    }
    for (var i = li; i < ${TK * TN}u; i += ${threads}u) {
      let k = i / ${TN}u;
      let n = i % ${TN}u;
      var v = 0.0;
      if (col0 + n < u.N && k0 + k < u.K) { v = B[off.y + (k0 + k) * u.bRs + (col0 + n) * u.bCs]; }
      Bs[k * ${TN}u + n] = v;
    }
    workgroupBarrier();
    for (var k = 0u; k < ${TK}u; k++) {
      var a: array<f32, ${TR}>;
      for (var r = 0u; r < ${TR}u; r++) { a[r] = As[k * ${TM}u + lid.y + r * ${wgY}u]; }
      for (var c = 0u; c < ${TC}u; c++) {
        let b = Bs[k * ${TN}u + lid.x + c * ${wgX}u];
        for (var r = 0u; r < ${TR}u; r++) { acc[r * ${TC}u + c] = fma(a[r], b, acc[r * ${TC}u + c]); }
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < ${TR}u; r++) {
    let row = row0 + lid.y + r * ${wgY}u;
    for (var c = 0u; c < ${TC}u; c++) {
      let col = col0 + lid.x + c * ${wgX}u;
      if (row < u.M && col < u.N) { ${store1(epi, 'off.z + row * u.N + col', `acc[r * ${TC}u + c]`, '(u.batchBase + wid.z) * u.M + row', 'col')} }
    }
  }`,
    tiles,
    epi,
  );
}

// ---------------------------------------------------------------- packing

export interface MatmulPackKey {
  /** Whether the source is stored transposed (cols×rows) relative to the logical rows×cols matrix. */
  transposed: boolean;
}

/**
 * Copies a batch of logical rows×cols matrices into a zero-padded [batch, rowsPadded, colsPadded] buffer,
 * transposing on the way when the source is stored transposed. This is what lets the vec4 register kernel
 * serve transposed operands and sizes that are not multiples of 4 (O(n²) work ahead of O(n³)).
 * Uniform: { rows, cols, rowsPadded, colsPadded, total } (total = batch·rowsPadded·colsPadded).
 */
export function matmulPackKernel(key: MatmulPackKey): KernelSpec {
  const src = key.transposed ? 'c * u.rows + r' : 'r * u.cols + c';
  const name = `matmul:pack:f32:${key.transposed ? 't' : 'n'}`;
  return memoKernel(matmulCache, name, () => ({
    name,
    inputs: [{ name: 'src', dtype: 'f32' }],
    outputs: [{ name: 'dst', dtype: 'f32' }],
    uniforms: fields('rows cols rowsPadded colsPadded total'),
    workgroupSize: LINEAR_WG,
    body: `if (gi >= u.total) { return; }
  let plane = u.rowsPadded * u.colsPadded;
  let b = gi / plane;
  let rem = gi % plane;
  let r = rem / u.colsPadded;
  let c = rem % u.colsPadded;
  var v = 0.0;
  if (r < u.rows && c < u.cols) { v = src[b * u.rows * u.cols + ${src}]; }
  dst[gi] = v;`,
  }));
}

/** Dispatch of the packing kernel for `total` padded elements. */
export function matmulPackDispatch(total: number): [number, number, number] {
  return grid1d(Math.ceil(total / LINEAR_WG));
}
