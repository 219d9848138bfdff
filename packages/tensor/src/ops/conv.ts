/** @file Raw NCHW conv2d and its input/filter gradients (torch semantics: stride, padding, dilation, groups; no bias). */
import {
  conv2dDirectKernel,
  conv2dFilterGradKernel,
  conv2dFilterGradWindowKernel,
  conv2dRowKernel,
  convDispatch,
  convRowSegment,
  MAX_WORKGROUPS_PER_DIM,
  convPackFilterKernel,
  convSumSplitsKernel,
  linearDispatch,
} from '@metagrad/kernels-wgsl';
import { DTypeError, InvalidArgumentError, ShapeError } from '../errors';
import { assertSameDevice, tidy, type Shape, type Tensor } from '../tensor';
import { empty } from './creation';
import { checkOptions, checkShapeArg, checkTensors, describeValue, fmt, UniformWriter } from './util';

export interface Conv2dOptions {
  stride?: number | readonly [number, number];
  padding?: number | readonly [number, number];
  dilation?: number | readonly [number, number];
  groups?: number;
}

interface ConvGeometry {
  N: number;
  C: number;
  H: number;
  W: number;
  O: number;
  kH: number;
  kW: number;
  G: number;
  Cg: number;
  Og: number;
  sH: number;
  sW: number;
  pH: number;
  pW: number;
  dH: number;
  dW: number;
  Ho: number;
  Wo: number;
}

/** Register-block sizes, chosen by measurement on llvmpipe (see the kernels' doc comments). Direct kernel: */
const PIXEL_BLOCK = 8;
const FILTER_GRAD_CHANNEL_BLOCK = 4;
const FILTER_GRAD_TAP_BLOCK = 4;
/**
 * Row kernel: accumulator budget (channels × pixels per invocation) and the longest source segment it keeps in
 * registers. Whole destination rows up to 256/channelBlock pixels measured best on llvmpipe (3×3, 32→32 ch on 14-px
 * rows: 14 px × 16 ch ≈ 1.4× faster than 7 px and 2–3.5× the direct kernel; LeNet 5×5 rows of 10 and 28 alike).
 */
const ROW_ACCUMULATORS = 256;
const ROW_MAX_PIXELS = 32;
const ROW_MAX_SEGMENT = 64;
/**
 * Pixel blocks the row kernel is compiled for (rounded up to one of these). Each (block, kW, stride, dilation)
 * is its own pipeline and a cold llvmpipe compile of a 16 × 14 block takes seconds (Mesa caches it on disk), so a
 * short list keeps the count down while fitting the common rows (10, 14, 28) exactly.
 */
const ROW_PIXEL_BLOCKS = [1, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32];
/** Filters up to this many taps get a filter-gradient kernel specialised on (kH, kW). */
const MAX_WINDOW_TAPS = 25;
/** The filter gradient splits its batch reduction until about this many invocations run. */
const FILTER_GRAD_TARGET_INVOCATIONS = 2048;

function pairOf(op: string, v: number | readonly [number, number] | undefined, dflt: number, what: string, min: number): [number, number] {
  if (v !== undefined && typeof v !== 'number' && !(Array.isArray(v) && v.length === 2)) {
    throw new InvalidArgumentError(`${op}: ${what} must be a number or a pair [h, w], got ${describeValue(v)}`);
  }
  const p: [number, number] = v === undefined ? [dflt, dflt] : typeof v === 'number' ? [v, v] : [v[0], v[1]];
  if (!p.every((x) => Number.isInteger(x) && x >= min)) throw new InvalidArgumentError(`${op}: ${what} must be integers >= ${min}, got ${describeValue(p)}`);
  return p;
}

function geometry(op: string, xShape: Shape, wShape: Shape, options: Conv2dOptions | undefined): ConvGeometry {
  checkShapeArg(op, xShape, 'input shape');
  checkShapeArg(op, wShape, 'filter shape');
  // An array ([2, 2] meant as the stride) or a typo'd key would otherwise be read as "no options".
  checkOptions(op, options, ['stride', 'padding', 'dilation', 'groups']);
  const opts = options ?? {};
  if (xShape.length !== 4 || wShape.length !== 4) {
    throw new ShapeError(`${op}: input ${fmt(xShape)} and filter ${fmt(wShape)} must both be rank 4 (NCHW, OIHW)`);
  }
  const [N, C, H, W] = xShape;
  const [O, Cw, kH, kW] = wShape;
  const [sH, sW] = pairOf(op, opts.stride, 1, 'stride', 1);
  const [pH, pW] = pairOf(op, opts.padding, 0, 'padding', 0);
  const [dH, dW] = pairOf(op, opts.dilation, 1, 'dilation', 1);
  const G = opts.groups === undefined ? 1 : opts.groups; // null is a mistake, not the default
  if (!Number.isInteger(G) || G < 1) throw new InvalidArgumentError(`${op}: groups must be a positive integer, got ${describeValue(G)}`);
  const desc = `input ${fmt(xShape)}, filter ${fmt(wShape)}, groups ${G}`;
  if (C % G !== 0 || O % G !== 0 || Cw !== C / G) {
    throw new ShapeError(`${op}: channels do not fit: ${desc} (need C and O divisible by groups, filter dim 1 = C/groups)`);
  }
  const Ho = Math.floor((H + 2 * pH - dH * (kH - 1) - 1) / sH) + 1;
  const Wo = Math.floor((W + 2 * pW - dW * (kW - 1) - 1) / sW) + 1;
  if (Ho < 1 || Wo < 1 || kH < 1 || kW < 1) {
    throw new ShapeError(`${op}: kernel larger than padded input: ${desc}, padding [${pH}, ${pW}], dilation [${dH}, ${dW}]`);
  }
  return { N, C, H, W, O, kH, kW, G, Cg: C / G, Og: O / G, sH, sW, pH, pW, dH, dW, Ho, Wo };
}

function checkF32(op: string, operands: Record<string, Tensor>): void {
  checkTensors(op, operands);
  const ts = Object.values(operands);
  for (const t of ts) if (t.dtype !== 'f32') throw new DTypeError(`${op}: expects f32 tensors, got ${t.dtype} ${fmt(t.shape)}`);
  for (const t of ts.slice(1)) assertSameDevice(ts[0], t);
}

function checkGy(op: string, g: ConvGeometry, gy: Tensor): void {
  const want = [g.N, g.O, g.Ho, g.Wo];
  if (gy.rank !== 4 || gy.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(`${op}: grad_output ${fmt(gy.shape)} does not match the conv output ${fmt(want)}`);
  }
}

/**
 * Destination channels per invocation: 16 × 8 pixels (32 vec4 accumulators, like the winning llvmpipe matmul
 * tile) measured best for 16–32 channels; fewer channels use a smaller block so padding lanes do not waste work.
 */
function channelBlockFor(channels: number): number {
  return channels <= 4 ? 4 : channels <= 8 ? 8 : 16;
}

/** Packs the filter for the direct kernel (channels it blocks over become contiguous, padded to the block). */
function packFilter(w: Tensor, g: ConvGeometry, forward: boolean, block: number): { packed: Tensor; jPad: number } {
  const R = forward ? g.Cg : g.Og;
  const J = forward ? g.Og : g.Cg;
  const jPad = Math.ceil(J / block) * block;
  const packed = empty([g.G * R * g.kH * g.kW * jPad], 'f32', w.device);
  const u = new UniformWriter()
    .u32(packed.size)
    .u32(R)
    .u32(g.kH * g.kW)
    .u32(jPad)
    .u32(J)
    .u32(g.Og)
    .u32(g.Cg)
    .u32(forward ? 1 : 0);
  w.device.dispatch(convPackFilterKernel(), [w.buffer, packed.buffer], u.finish(), linearDispatch(packed.size));
  return { packed, jPad };
}

/** Shared driver of the forward and input-gradient direct kernels (the latter is a transposed convolution). */
function directConv(mode: 'forward' | 'inputGrad', src: Tensor, w: Tensor, g: ConvGeometry, dstShape: number[]): Tensor {
  // tidy: a throw while packing or dispatching frees the output and the packed filter.
  return tidy(() => {
    const out = empty(dstShape, 'f32', src.device);
    if (out.size === 0) return out;
    if (rowConv(mode, src, w, g, out)) return out;
    const forward = mode === 'forward';
    const block = channelBlockFor(forward ? g.Og : g.Cg);
    const { packed, jPad } = packFilter(w, g, forward, block);
    const [, srcC, srcH, srcW] = src.shape;
    const [, dstC, dstH, dstW] = dstShape;
    const nJb = jPad / block;
    const nPb = Math.ceil(dstW / PIXEL_BLOCK);
    const total = g.N * g.G * nJb * dstH * nPb;
    const u = new UniformWriter()
      .u32s([g.N, srcC, srcH, srcW, dstC, dstH, dstW, g.G])
      .u32s([forward ? g.Cg : g.Og, forward ? g.Og : g.Cg, jPad / 4, nJb])
      .u32s([g.kH, g.kW, g.sH, g.sW, g.pH, g.pW, g.dH, g.dW, nPb, total]);
    const spec = conv2dDirectKernel({ mode, channelBlock: block, pixelBlock: PIXEL_BLOCK, unitStrideW: g.sW === 1 });
    src.device.dispatch(spec, [src.buffer, packed.buffer, out.buffer], u.finish(), convDispatch(total));
    packed.dispose();
    return out;
  });
}

/**
 * Runs conv2dRowKernel when it applies: every forward conv whose row segment fits, and the input gradient of
 * stride-1 convs as a forward conv of gy with the mirrored filter and padding (k−1)·d − p. Returns false (nothing
 * dispatched) for the rest: strided input gradients and very wide dilated filters use the direct kernel.
 */
function rowConv(mode: 'forward' | 'inputGrad', src: Tensor, w: Tensor, g: ConvGeometry, out: Tensor): boolean {
  const forward = mode === 'forward';
  if (!forward && (g.sH !== 1 || g.sW !== 1)) return false;
  const block = channelBlockFor(forward ? g.Og : g.Cg);
  const [, srcC, srcH, srcW] = src.shape;
  const [, dstC, dstH, dstW] = out.shape;
  const sW = forward ? g.sW : 1;
  const geom = { kW: g.kW, sW, dW: g.dW };
  // Fewest pixel blocks within the budgets, then spread the row evenly over them (14 → 14, 28 → 2 × 14 at 16 ch).
  const maxPixels = Math.min(ROW_MAX_PIXELS, Math.floor(ROW_ACCUMULATORS / block));
  const blockFor = (n: number) => ROW_PIXEL_BLOCKS.find((b) => b >= Math.ceil(dstW / n)) ?? ROW_MAX_PIXELS;
  let nPb = Math.ceil(dstW / maxPixels);
  while (nPb < dstW && convRowSegment({ ...geom, pixelBlock: blockFor(nPb) }) > ROW_MAX_SEGMENT) nPb++;
  const pixelBlock = blockFor(nPb);
  nPb = Math.ceil(dstW / pixelBlock);
  const jPad = Math.ceil((forward ? g.Og : g.Cg) / block) * block;
  const nJb = jPad / block;
  if (convRowSegment({ ...geom, pixelBlock }) > ROW_MAX_SEGMENT || g.G * nJb > MAX_WORKGROUPS_PER_DIM) return false;
  const { packed } = packFilter(w, g, forward, block);
  const total = g.N * dstH * nPb;
  const pH = forward ? g.pH : g.dH * (g.kH - 1) - g.pH;
  const pW = forward ? g.pW : g.dW * (g.kW - 1) - g.pW;
  const u = new UniformWriter()
    .u32s([g.N, srcC, srcH, srcW, dstC, dstH, dstW, g.G])
    .u32s([forward ? g.Cg : g.Og, forward ? g.Og : g.Cg, jPad / 4, nJb])
    .u32s([g.kH, forward ? g.sH : 1, g.dH])
    .i32(pH)
    .i32(pW)
    .u32s([nPb, total]);
  const spec = conv2dRowKernel({ channelBlock: block, pixelBlock, ...geom, flip: !forward });
  const [x, y] = convDispatch(total);
  src.device.dispatch(spec, [src.buffer, packed.buffer, out.buffer], u.finish(), [x, y, g.G * nJb]);
  packed.dispose();
  return true;
}

/** Cross-correlation as torch.nn.functional.conv2d (no bias): x[N,C,H,W] ⋆ w[O,C/g,kH,kW] → [N,O,Ho,Wo]. */
export function conv2d(x: Tensor, w: Tensor, opts: Conv2dOptions = {}): Tensor {
  checkF32('conv2d', { x, w });
  const g = geometry('conv2d', x.shape, w.shape, opts);
  return directConv('forward', x, w, g, [g.N, g.O, g.Ho, g.Wo]);
}

/** torch's grad_input of conv2d: gy[N,O,Ho,Wo] and w → [N,C,H,W] (rows/cols no window reads get 0). */
export function conv2dInputGrad(gy: Tensor, w: Tensor, inputShape: Shape, opts: Conv2dOptions = {}): Tensor {
  checkF32('conv2dInputGrad', { gy, w });
  const g = geometry('conv2dInputGrad', inputShape, w.shape, opts);
  checkGy('conv2dInputGrad', g, gy);
  return directConv('inputGrad', gy, w, g, [...inputShape]);
}

/** torch's grad_weight of conv2d: x and gy → [O,C/g,kH,kW], summed over the batch in a fixed order. */
export function conv2dFilterGrad(x: Tensor, gy: Tensor, filterShape: Shape, opts: Conv2dOptions = {}): Tensor {
  checkF32('conv2dFilterGrad', { x, gy });
  const g = geometry('conv2dFilterGrad', x.shape, filterShape, opts);
  checkGy('conv2dFilterGrad', g, gy);
  return tidy(() => {
    const out = empty([...filterShape], 'f32', x.device);
    if (out.size === 0) return out;
    // Small filters: one invocation per (o block, ci) covering the whole window; else (o block, ci, kh, kw block).
    const whole = g.kH * g.kW <= MAX_WINDOW_TAPS;
    const channelBlock = whole ? (g.Og <= 4 ? 4 : 8) : FILTER_GRAD_CHANNEL_BLOCK;
    const nOb = Math.ceil(g.Og / channelBlock);
    const nKb = whole ? 1 : Math.ceil(g.kW / FILTER_GRAD_TAP_BLOCK);
    const perSplit = g.G * nOb * g.Cg * (whole ? 1 : g.kH * nKb);
    const wanted = Math.min(g.N, Math.max(1, Math.ceil(FILTER_GRAD_TARGET_INVOCATIONS / perSplit)));
    const nPerSplit = g.N === 0 ? 1 : Math.ceil(g.N / wanted);
    const S = g.N === 0 ? 1 : Math.ceil(g.N / nPerSplit);
    const total = S * perSplit;
    const part = S === 1 ? out : empty([S * out.size], 'f32', x.device);
    const u = new UniformWriter()
      .u32s([g.N, g.C, g.H, g.W, g.O, g.Ho, g.Wo, g.G])
      .u32s([g.Cg, g.Og, g.kH, g.kW, g.sH, g.sW, g.pH, g.pW])
      .u32s([g.dH, g.dW, nOb, nKb, S, nPerSplit, total]);
    const spec = whole
      ? conv2dFilterGradWindowKernel({ channelBlock, kH: g.kH, kW: g.kW })
      : conv2dFilterGradKernel({ channelBlock, tapBlock: FILTER_GRAD_TAP_BLOCK });
    x.device.dispatch(spec, [x.buffer, gy.buffer, part.buffer], u.finish(), convDispatch(total));
    if (part !== out) {
      const su = new UniformWriter().u32(out.size).u32(S).finish();
      x.device.dispatch(convSumSplitsKernel(), [part.buffer, out.buffer], su, linearDispatch(out.size));
      part.dispose();
    }
    return out;
  });
}

/** Output spatial size of conv2d for the given input and filter shapes (exported for layers and tests). */
export function conv2dOutputShape(xShape: Shape, wShape: Shape, opts: Conv2dOptions = {}): number[] {
  const g = geometry('conv2dOutputShape', xShape, wShape, opts);
  return [g.N, g.O, g.Ho, g.Wo];
}
