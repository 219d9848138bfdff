/** @file WGSL generators for NCHW conv2d and its input/filter gradients: register-blocked direct and row kernels (no im2col). */
import { fields, memoKernel } from './render';
import { grid1d, type KernelSpec } from './types';

/** Conv kernels run fewer, heavier invocations than elementwise ones; 64 keeps both llvmpipe threads busy. */
export const CONV_WG = 64;

/** Specs memoised by name: the names were already the pipeline keys, so they spell every parameter. */
const convCache = new Map<string, KernelSpec>();

export function convDispatch(invocations: number): [number, number, number] {
  return grid1d(Math.ceil(invocations / CONV_WG));
}

/**
 * Repacks a filter w[O, Cg, kH, kW] (O = G·Og) so the channels a direct-conv invocation blocks over are
 * contiguous vec4 lanes, zero-padded to `jPad`:
 * - forward:   wT[g, ci, kh, kw, oo] = w[g·Og + oo, ci, kh, kw]   (r = ci, j = oo)
 * - inputGrad: wT[g, oo, kh, kw, ci] = w[g·Og + oo, ci, kh, kw]   (r = oo, j = ci)
 * Uniform: { n, R, kHW, jPad, J, Og, Cg, forward(0/1) }.
 */
export function convPackFilterKernel(): KernelSpec {
  return memoKernel(convCache, 'conv2d:packFilter', () => ({
    name: 'conv2d:packFilter',
    inputs: [{ name: 'w', dtype: 'f32' }],
    outputs: [{ name: 'wT', dtype: 'f32' }],
    uniforms: fields('n R kHW jPad J Og Cg forward'),
    workgroupSize: 256,
    body: `if (gi >= u.n) { return; }
  let j = gi % u.jPad;
  var t = gi / u.jPad;
  let k = t % u.kHW;
  t = t / u.kHW;
  let r = t % u.R;
  let g = t / u.R;
  if (j >= u.J) { wT[gi] = 0.0; return; }
  var oo = j;
  var ci = r;
  if (u.forward == 0u) { oo = r; ci = j; }
  wT[gi] = w[((g * u.Og + oo) * u.Cg + ci) * u.kHW + k];`,
  }));
}

export interface ConvDirectKey {
  /** forward: dst = y from src = x; inputGrad: dst = grad_x from src = grad_y (a transposed convolution). */
  mode: 'forward' | 'inputGrad';
  /** Destination channels per invocation (multiple of 4: vec4 lanes of the packed filter). */
  channelBlock: number;
  /** Consecutive destination pixels along W per invocation. */
  pixelBlock: number;
  /** inputGrad with stride 1 along W: skips the per-pixel divisibility test (an integer division per tap). */
  unitStrideW?: boolean;
}

/**
 * Direct convolution with register blocking: each invocation owns channelBlock destination channels ×
 * pixelBlock consecutive pixels of one destination row and keeps them in vec4 accumulators; per filter tap it
 * loads pixelBlock source values and channelBlock/4 vec4 filter values (contiguous, the same for all lanes).
 * Uniform (see ConvDirectUniform in the op): { N, srcC, srcH, srcW, dstC, dstH, dstW, G, R, Jg, jPad4, nJb,
 * kH, kW, sH, sW, pH, pW, dH, dW, nPb, total }.
 */
export function conv2dDirectKernel(key: ConvDirectKey): KernelSpec {
  const { channelBlock: cb, pixelBlock: pb, mode } = key;
  if (cb % 4 !== 0) throw new Error(`conv2dDirectKernel: channelBlock ${cb} must be a multiple of 4`);
  const v = cb / 4;
  const decl: string[] = [];
  const loads: string[] = [];
  const fmas: string[] = [];
  const writes: string[] = [];
  for (let p = 0; p < pb; p++) for (let j = 0; j < v; j++) decl.push(`  var a${p}_${j} = vec4<f32>(0.0);`);
  for (let p = 0; p < pb; p++) {
    if (mode === 'forward') {
      loads.push(`      let iw${p} = iwBase + ${p} * i32(u.sW);`);
      loads.push(`      let x${p} = select(0.0, src[srcRow + u32(clamp(iw${p}, 0, srcWm1))], iw${p} >= 0 && iw${p} <= srcWm1);`);
    } else if (key.unitStrideW) {
      loads.push(`      let tw${p} = twBase + ${p};`);
      loads.push(`      let x${p} = select(0.0, src[srcRow + u32(clamp(tw${p}, 0, srcWm1))], tw${p} >= 0 && tw${p} <= srcWm1);`);
    } else {
      loads.push(`      let tw${p} = twBase + ${p};`);
      loads.push(`      let ow${p} = tw${p} / i32(u.sW);`);
      loads.push(
        `      let x${p} = select(0.0, src[srcRow + u32(clamp(ow${p}, 0, srcWm1))], tw${p} >= 0 && ow${p} * i32(u.sW) == tw${p} && ow${p} <= srcWm1);`,
      );
    }
  }
  for (let j = 0; j < v; j++) loads.push(`      let w${j} = wT[wb + ${j}u];`);
  for (let p = 0; p < pb; p++) for (let j = 0; j < v; j++) fmas.push(`      a${p}_${j} = fma(w${j}, vec4<f32>(x${p}), a${p}_${j});`);
  for (let j = 0; j < v; j++) {
    for (let l = 0; l < 4; l++) {
      const c = 4 * j + l;
      writes.push(`  if (j0 + ${c}u < u.Jg) {`);
      writes.push(`    let base${c} = ((n * u.dstC + g * u.Jg + j0 + ${c}u) * u.dstH + row) * u.dstW + col0;`);
      for (let p = 0; p < pb; p++) writes.push(`    if (col0 + ${p}u < u.dstW) { dst[base${c} + ${p}u] = a${p}_${j}[${l}]; }`);
      writes.push('  }');
    }
  }
  const rowSetup =
    mode === 'forward'
      ? `    let ih = i32(row * u.sH + kh * u.dH) - i32(u.pH);
    if (ih < 0 || ih >= i32(u.srcH)) { continue; }
    let srcRow = (srcPlane + u32(ih)) * u.srcW;`
      : `    let th = i32(row + u.pH) - i32(kh * u.dH);
    if (th < 0) { continue; }
    let oh = u32(th) / u.sH;
    if (oh * u.sH != u32(th) || oh >= u.srcH) { continue; }
    let srcRow = (srcPlane + oh) * u.srcW;`;
  const colSetup =
    mode === 'forward' ? `      let iwBase = i32(col0 * u.sW + kw * u.dW) - i32(u.pW);` : `      let twBase = i32(col0 + u.pW) - i32(kw * u.dW);`;
  const name = `conv2d:${mode}:c${cb}:p${pb}${key.unitStrideW && mode === 'inputGrad' ? ':s1' : ''}`;
  return memoKernel(convCache, name, () => ({
    name,
    inputs: [
      { name: 'src', dtype: 'f32' },
      { name: 'wT', dtype: 'f32', vec: 4 },
    ],
    outputs: [{ name: 'dst', dtype: 'f32' }],
    uniforms: fields('N srcC srcH srcW dstC dstH dstW G R Jg jPad4 nJb kH kW sH sW pH pW dH dW nPb total'),
    workgroupSize: CONV_WG,
    body: `if (gi >= u.total) { return; }
  let pbi = gi % u.nPb;
  var t = gi / u.nPb;
  let row = t % u.dstH;
  t = t / u.dstH;
  let jb = t % u.nJb;
  t = t / u.nJb;
  let g = t % u.G;
  let n = t / u.G;
  let col0 = pbi * ${pb}u;
  let j0 = jb * ${cb}u;
  let srcWm1 = i32(u.srcW) - 1;
${decl.join('\n')}
  for (var r = 0u; r < u.R; r++) {
  let srcPlane = (n * u.srcC + g * u.R + r) * u.srcH;
  for (var kh = 0u; kh < u.kH; kh++) {
${rowSetup}
    var wb = (((g * u.R + r) * u.kH + kh) * u.kW) * u.jPad4 + jb * ${v}u;
    for (var kw = 0u; kw < u.kW; kw++) {
${colSetup}
${loads.join('\n')}
${fmas.join('\n')}
      wb += u.jPad4;
    }
  }
  }
${writes.join('\n')}`,
  }));
}

export interface ConvRowKey {
  /** Destination channels per invocation (multiple of 4: vec4 lanes of the packed filter). */
  channelBlock: number;
  /** Consecutive destination pixels along W per invocation (ideally the whole row, see the op). */
  pixelBlock: number;
  /** Filter width, stride and dilation along W: compile-time so each source row segment is loaded once. */
  kW: number;
  sW: number;
  dW: number;
  /** Reads the filter taps mirrored (kh → kH−1−kh, kw → kW−1−kw): the input gradient of a stride-1 conv. */
  flip: boolean;
}

/** Source values one invocation of conv2dRowKernel loads per filter row. */
export function convRowSegment(key: Pick<ConvRowKey, 'pixelBlock' | 'kW' | 'sW' | 'dW'>): number {
  return (key.pixelBlock - 1) * key.sW + (key.kW - 1) * key.dW + 1;
}

/**
 * Forward-form direct convolution with row-segment reuse (the fastest shape on llvmpipe, where every storage load
 * is a per-lane gather): each invocation owns channelBlock destination channels × pixelBlock consecutive pixels of
 * one row; per (source channel, filter row) it loads the source row segment under its pixels once (pixelBlock + kW − 1
 * values at unit stride) and reuses it for all kW taps, so a 3×3 filter costs 16 + 12 loads per 672 FMAs at
 * 14 pixels × 16 channels, against 36 per 384 in conv2dDirectKernel. Rows outside the source are skipped.
 * The input gradient of a stride-1 conv is this kernel on gy with the packed `inputGrad` filter, flip = true and
 * padding (k−1)·d − p (possibly negative, hence i32). Filter packed by convPackFilterKernel (r = source channel in
 * the group, j = destination channel). Dispatch: x/y = grid1d over total / CONV_WG, z = G · nJb, so the channel block
 * and group are the same for the whole workgroup.
 * Uniform: { N, srcC, srcH, srcW, dstC, dstH, dstW, G, R, Jg, jPad4, nJb, kH, sH, dH, pH: i32, pW: i32, nPb, total }
 * with total = N · dstH · nPb.
 */
export function conv2dRowKernel(key: ConvRowKey): KernelSpec {
  const { channelBlock: cb, pixelBlock: pb, kW, sW, dW, flip } = key;
  if (cb % 4 !== 0) throw new Error(`conv2dRowKernel: channelBlock ${cb} must be a multiple of 4`);
  const v = cb / 4;
  const L = convRowSegment(key);
  const decl: string[] = [];
  const row: string[] = [];
  const writes: string[] = [];
  for (let p = 0; p < pb; p++) for (let j = 0; j < v; j++) decl.push(`  var a${p}_${j} = vec4<f32>(0.0);`);
  for (let i = 0; i < L; i++) {
    row.push(`      let s${i} = select(0.0, src[srcRow + u32(clamp(iw0 + ${i}, 0, srcWm1))], iw0 + ${i} >= 0 && iw0 + ${i} <= srcWm1);`);
  }
  for (let kw = 0; kw < kW; kw++) {
    const tap = flip ? kW - 1 - kw : kw;
    for (let j = 0; j < v; j++) row.push(`      let w${kw}_${j} = wT[wr + ${tap}u * u.jPad4 + ${j}u];`);
    for (let p = 0; p < pb; p++) {
      for (let j = 0; j < v; j++) row.push(`      a${p}_${j} = fma(w${kw}_${j}, vec4<f32>(s${p * sW + kw * dW}), a${p}_${j});`);
    }
  }
  for (let j = 0; j < v; j++) {
    for (let l = 0; l < 4; l++) {
      const c = 4 * j + l;
      writes.push(`  if (j0 + ${c}u < u.Jg) {`);
      writes.push(`    let base${c} = ((n * u.dstC + g * u.Jg + j0 + ${c}u) * u.dstH + oh) * u.dstW + col0;`);
      for (let p = 0; p < pb; p++) writes.push(`    if (col0 + ${p}u < u.dstW) { dst[base${c} + ${p}u] = a${p}_${j}[${l}]; }`);
      writes.push('  }');
    }
  }
  const name = `conv2d:row:c${cb}:p${pb}:k${kW}:s${sW}:d${dW}${flip ? ':flip' : ''}`;
  return memoKernel(convCache, name, () => ({
    name,
    inputs: [
      { name: 'src', dtype: 'f32' },
      { name: 'wT', dtype: 'f32', vec: 4 },
    ],
    outputs: [{ name: 'dst', dtype: 'f32' }],
    uniforms: [...fields('N srcC srcH srcW dstC dstH dstW G R Jg jPad4 nJb kH sH dH'), ...fields('pH pW', 'i32'), ...fields('nPb total')],
    workgroupSize: CONV_WG,
    body: `if (gi >= u.total) { return; }
  let jb = wid.z % u.nJb;
  let g = wid.z / u.nJb;
  let pbi = gi % u.nPb;
  let t = gi / u.nPb;
  let oh = t % u.dstH;
  let n = t / u.dstH;
  let col0 = pbi * ${pb}u;
  let j0 = jb * ${cb}u;
  let srcWm1 = i32(u.srcW) - 1;
  let iw0 = i32(col0 * ${sW}u) - u.pW;
${decl.join('\n')}
  for (var r = 0u; r < u.R; r++) {
    let srcPlane = (n * u.srcC + g * u.R + r) * u.srcH;
    let wb = (g * u.R + r) * u.kH * ${kW}u * u.jPad4 + jb * ${v}u;
    for (var kh = 0u; kh < u.kH; kh++) {
      let ih = i32(oh * u.sH + kh * u.dH) - u.pH;
      if (ih < 0 || ih >= i32(u.srcH)) { continue; }
      let srcRow = (srcPlane + u32(ih)) * u.srcW;
      let wr = wb + ${flip ? '(u.kH - 1u - kh)' : 'kh'} * ${kW}u * u.jPad4;
${row.join('\n')}
    }
  }
${writes.join('\n')}`,
  }));
}

export interface ConvFilterGradKey {
  /** Output channels per invocation (vec4 lanes, so 4 or 8). */
  channelBlock: number;
  /** Consecutive kw taps per invocation. */
  tapBlock: number;
}

/**
 * grad_w[o, ci, kh, kw] = Σ_{n, oh, ow} x[n, g·Cg+ci, oh·s−p+kh·d, ow·s−p+kw·d] · gy[n, o, oh, ow]: each invocation
 * owns channelBlock o's × tapBlock kw taps of one (g, ci, kh) and sums over its share of the batch (split s of
 * S, so small filters still spread over many invocations). Partials go to part[s, O, Cg, kH, kW] and are summed in
 * fixed split order by convSumSplitsKernel, so the result is deterministic.
 * Uniform: { N, C, H, W, O, Ho, Wo, G, Cg, Og, kH, kW, sH, sW, pH, pW, dH, dW, nOb, nKb, S, nPerSplit, total }.
 */
export function conv2dFilterGradKernel(key: ConvFilterGradKey): KernelSpec {
  const { channelBlock: cb, tapBlock: kb } = key;
  if (cb % 4 !== 0) throw new Error(`conv2dFilterGradKernel: channelBlock ${cb} must be a multiple of 4`);
  const v = cb / 4;
  const decl: string[] = [];
  const body: string[] = [];
  const writes: string[] = [];
  for (let q = 0; q < kb; q++) for (let j = 0; j < v; j++) decl.push(`  var a${q}_${j} = vec4<f32>(0.0);`);
  for (let j = 0; j < v; j++) {
    const ix = [0, 1, 2, 3].map((l) => `gy[gyRow${4 * j + l} + ow]`).join(', ');
    body.push(`        let gv${j} = vec4<f32>(${ix});`);
  }
  for (let q = 0; q < kb; q++) {
    body.push(`        let iw${q} = iwBase + ${q} * i32(u.dW);`);
    body.push(`        let x${q} = select(0.0, x[xRow + u32(clamp(iw${q}, 0, wm1))], iw${q} >= 0 && iw${q} <= wm1);`);
  }
  for (let q = 0; q < kb; q++) for (let j = 0; j < v; j++) body.push(`        a${q}_${j} = fma(gv${j}, vec4<f32>(x${q}), a${q}_${j});`);
  const gyRows: string[] = [];
  for (let c = 0; c < cb; c++) gyRows.push(`      let gyRow${c} = ((n * u.O + g * u.Og + min(o0 + ${c}u, u.Og - 1u)) * u.Ho + oh) * u.Wo;`);
  for (let j = 0; j < v; j++) {
    for (let l = 0; l < 4; l++) {
      const c = 4 * j + l;
      writes.push(`  if (o0 + ${c}u < u.Og) {`);
      writes.push(`    let base${c} = (((s * u.O + g * u.Og + o0 + ${c}u) * u.Cg + ci) * u.kH + kh) * u.kW + kw0;`);
      for (let q = 0; q < kb; q++) writes.push(`    if (kw0 + ${q}u < u.kW) { part[base${c} + ${q}u] = a${q}_${j}[${l}]; }`);
      writes.push('  }');
    }
  }
  const name = `conv2d:filterGrad:c${cb}:k${kb}`;
  return memoKernel(convCache, name, () => ({
    name,
    inputs: [
      { name: 'x', dtype: 'f32' },
      { name: 'gy', dtype: 'f32' },
    ],
    outputs: [{ name: 'part', dtype: 'f32' }],
    uniforms: fields('N C H W O Ho Wo G Cg Og kH kW sH sW pH pW dH dW nOb nKb S nPerSplit total'),
    workgroupSize: CONV_WG,
    body: `if (gi >= u.total) { return; }
  let kbi = gi % u.nKb;
  var t = gi / u.nKb;
  let kh = t % u.kH;
  t = t / u.kH;
  let ci = t % u.Cg;
  t = t / u.Cg;
  let obi = t % u.nOb;
  t = t / u.nOb;
  let g = t % u.G;
  let s = t / u.G;
  let kw0 = kbi * ${kb}u;
  let o0 = obi * ${cb}u;
  let wm1 = i32(u.W) - 1;
${decl.join('\n')}
  let nEnd = min(u.N, (s + 1u) * u.nPerSplit);
  for (var n = s * u.nPerSplit; n < nEnd; n++) {
    let xPlane = (n * u.C + g * u.Cg + ci) * u.H;
    for (var oh = 0u; oh < u.Ho; oh++) {
      let ih = i32(oh * u.sH + kh * u.dH) - i32(u.pH);
      if (ih < 0 || ih >= i32(u.H)) { continue; }
      let xRow = (xPlane + u32(ih)) * u.W;
${gyRows.join('\n')}
      for (var ow = 0u; ow < u.Wo; ow++) {
        let iwBase = i32(ow * u.sW + kw0 * u.dW) - i32(u.pW);
${body.join('\n')}
      }
    }
  }
${writes.join('\n')}`,
  }));
}

/** out[i] = Σ_{s < S} part[s·n + i], summed in split order (deterministic). Uniform: { n, S }. */
export function convSumSplitsKernel(): KernelSpec {
  return memoKernel(convCache, 'conv2d:sumSplits', () => ({
    name: 'conv2d:sumSplits',
    inputs: [{ name: 'part', dtype: 'f32' }],
    outputs: [{ name: 'out', dtype: 'f32' }],
    uniforms: fields('n S'),
    workgroupSize: 256,
    body: `if (gi >= u.n) { return; }
  var acc = 0.0;
  for (var s = 0u; s < u.S; s++) { acc += part[s * u.n + gi]; }
  out[gi] = acc;`,
  }));
}

export interface ConvFilterGradWindowKey {
  /** Output channels per invocation (multiple of 4). */
  channelBlock: number;
  kH: number;
  kW: number;
}

/**
 * Filter gradient specialised on a small filter size (kH·kW ≤ 25): each invocation owns channelBlock o's × the
 * whole kH×kW window of one (g, ci), so per output pixel it loads channelBlock gy values and kH·kW x values for
 * channelBlock·kH·kW multiply-adds (vs 8 loads per 16 in the generic kernel) — about 3× faster for 3×3 on
 * llvmpipe. Same uniform, bindings and partial layout as conv2dFilterGradKernel (nKb unused, = 1).
 */
export function conv2dFilterGradWindowKernel(key: ConvFilterGradWindowKey): KernelSpec {
  const { channelBlock: cb, kH, kW } = key;
  if (cb % 4 !== 0) throw new Error(`conv2dFilterGradWindowKernel: channelBlock ${cb} must be a multiple of 4`);
  const v = cb / 4;
  const decl: string[] = [];
  const rows: string[] = [];
  const body: string[] = [];
  const writes: string[] = [];
  for (let t = 0; t < kH * kW; t++) for (let j = 0; j < v; j++) decl.push(`  var a${t}_${j} = vec4<f32>(0.0);`);
  for (let kh = 0; kh < kH; kh++) {
    rows.push(`      let ih${kh} = i32(oh * u.sH + ${kh}u * u.dH) - i32(u.pH);`);
    rows.push(`      let rowOk${kh} = ih${kh} >= 0 && ih${kh} < i32(u.H);`);
    rows.push(`      let xRow${kh} = (xPlane + u32(clamp(ih${kh}, 0, i32(u.H) - 1))) * u.W;`);
  }
  for (let j = 0; j < v; j++) {
    body.push(`        let gv${j} = vec4<f32>(${[0, 1, 2, 3].map((l) => `gy[gyRow${4 * j + l} + ow]`).join(', ')});`);
  }
  for (let kw = 0; kw < kW; kw++) {
    body.push(`        let iw${kw} = iwBase + ${kw} * i32(u.dW);`);
    body.push(`        let colOk${kw} = iw${kw} >= 0 && iw${kw} <= wm1;`);
    body.push(`        let ic${kw} = u32(clamp(iw${kw}, 0, wm1));`);
  }
  for (let kh = 0; kh < kH; kh++) {
    for (let kw = 0; kw < kW; kw++) {
      const t = kh * kW + kw;
      body.push(`        let x${t} = select(0.0, x[xRow${kh} + ic${kw}], rowOk${kh} && colOk${kw});`);
      for (let j = 0; j < v; j++) body.push(`        a${t}_${j} = fma(gv${j}, vec4<f32>(x${t}), a${t}_${j});`);
    }
  }
  const gyRows: string[] = [];
  for (let c = 0; c < cb; c++) gyRows.push(`      let gyRow${c} = ((n * u.O + g * u.Og + min(o0 + ${c}u, u.Og - 1u)) * u.Ho + oh) * u.Wo;`);
  for (let j = 0; j < v; j++) {
    for (let l = 0; l < 4; l++) {
      const c = 4 * j + l;
      writes.push(`  if (o0 + ${c}u < u.Og) {`);
      writes.push(`    let base${c} = ((s * u.O + g * u.Og + o0 + ${c}u) * u.Cg + ci) * ${kH * kW}u;`);
      for (let t = 0; t < kH * kW; t++) writes.push(`    part[base${c} + ${t}u] = a${t}_${j}[${l}];`);
      writes.push('  }');
    }
  }
  const name = `conv2d:filterGradWindow:c${cb}:k${kH}x${kW}`;
  return memoKernel(convCache, name, () => ({
    name,
    inputs: [
      { name: 'x', dtype: 'f32' },
      { name: 'gy', dtype: 'f32' },
    ],
    outputs: [{ name: 'part', dtype: 'f32' }],
    uniforms: fields('N C H W O Ho Wo G Cg Og kH kW sH sW pH pW dH dW nOb nKb S nPerSplit total'),
    workgroupSize: CONV_WG,
    body: `if (gi >= u.total) { return; }
  let ci = gi % u.Cg;
  var t = gi / u.Cg;
  let obi = t % u.nOb;
  t = t / u.nOb;
  let g = t % u.G;
  let s = t / u.G;
  let o0 = obi * ${cb}u;
  let wm1 = i32(u.W) - 1;
${decl.join('\n')}
  let nEnd = min(u.N, (s + 1u) * u.nPerSplit);
  for (var n = s * u.nPerSplit; n < nEnd; n++) {
    let xPlane = (n * u.C + g * u.Cg + ci) * u.H;
    for (var oh = 0u; oh < u.Ho; oh++) {
${rows.join('\n')}
${gyRows.join('\n')}
      for (var ow = 0u; ow < u.Wo; ow++) {
        let iwBase = i32(ow * u.sW) - i32(u.pW);
${body.join('\n')}
      }
    }
  }
${writes.join('\n')}`,
  }));
}
