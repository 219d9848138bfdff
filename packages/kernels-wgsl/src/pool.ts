/** @file WGSL generators for NCHW 2-D max/avg pooling and their backward passes (gather form: no atomics). */
import { LINEAR_WG } from './basic';
import { memoKernel } from './render';
import type { KernelSpec } from './types';

/** Uniform fields shared by every pooling kernel: { n, H, W, Ho, Wo, kH, kW, sH, sW, pH, pW } (11 u32 words). */
const POOL_FIELDS = ['n', 'H', 'W', 'Ho', 'Wo', 'kH', 'kW', 'sH', 'sW', 'pH', 'pW'];

const poolCache = new Map<string, KernelSpec>();

/** A pooling kernel over f32 planes: `inputs` are read, `output` written, uniform POOL_FIELDS + `extra`. */
function poolKernel(name: string, inputs: string[], output: string, body: string, opts: { argmax?: boolean; extra?: string[] } = {}): KernelSpec {
  return memoKernel(poolCache, name, () => ({
    name,
    inputs: inputs.map((n) => ({ name: n, dtype: 'f32' })),
    outputs: [{ name: output, dtype: 'f32' }],
    uniforms: [...POOL_FIELDS, ...(opts.extra ?? [])].map((f) => [f, 'u32'] as const),
    workgroupSize: LINEAR_WG,
    functions: opts.argmax ? ARGMAX_FN.trim() : undefined,
    body,
  }));
}

/** The in-bounds window of output (oh, ow) as [h0, h1) × [w0, w1), in plane coordinates. */
const WINDOW = `
  let hs = i32(oh * u.sH) - i32(u.pH);
  let ws = i32(ow * u.sW) - i32(u.pW);
  let h0 = u32(max(hs, 0));
  let h1 = u32(min(hs + i32(u.kH), i32(u.H)));
  let w0 = u32(max(ws, 0));
  let w1 = u32(min(ws + i32(u.kW), i32(u.W)));`;

/** Output windows [oh0, oh1) × [ow0, ow1) whose (padded) span contains input (ih, iw). */
const WINDOWS_CONTAINING = `
  let th = i32(ih + u.pH);
  let tw = i32(iw + u.pW);
  let oh0 = u32(max(th - i32(u.kH) + i32(u.sH), 0)) / u.sH;
  let oh1 = min(u32(th) / u.sH + 1u, u.Ho);
  let ow0 = u32(max(tw - i32(u.kW) + i32(u.sW), 0)) / u.sW;
  let ow1 = min(u32(tw) / u.sW + 1u, u.Wo);`;

/**
 * First max of each window in row-major order (NaN wins, first NaN), as a plane offset h·W + w; an all −inf
 * window picks its first in-bounds element. The same scan serves forward and backward, so both agree exactly.
 */
const ARGMAX_FN = `
fn windowArgmax(base: u32, oh: u32, ow: u32) -> u32 {
  ${WINDOW}
  var best = x[base + h0 * u.W + w0];
  var bi = h0 * u.W + w0;
  var found_nan = best != best;
  for (var h = h0; h < h1 && !found_nan; h++) {
    for (var w = w0; w < w1; w++) {
      let v = x[base + h * u.W + w];
      if (v > best || v != v) {
        best = v;
        bi = h * u.W + w;
        if (v != v) { found_nan = true; break; }
      }
    }
  }
  return bi;
}`;

/** out[p, oh, ow] = x at the window's argmax. Bindings: x, out. */
export function maxPool2dKernel(): KernelSpec {
  return poolKernel(
    'maxPool2d',
    ['x'],
    'out',
    `if (gi >= u.n) { return; }
  let ow = gi % u.Wo;
  let t = gi / u.Wo;
  let oh = t % u.Ho;
  let p = t / u.Ho;
  let base = p * u.H * u.W;
  out[gi] = x[base + windowArgmax(base, oh, ow)];`,
    { argmax: true },
  );
}

/**
 * Max-pool backward in gather form: each input element scans the windows that contain it (at most
 * ceil(k/s)² of them), recomputes their argmax, and sums the gy of those whose argmax is itself. Summation
 * order is fixed (row-major over windows), so the result is deterministic. Bindings: gy, x, gx.
 */
export function maxPool2dBackwardKernel(): KernelSpec {
  return poolKernel(
    'maxPool2dBackward',
    ['gy', 'x'],
    'gx',
    `if (gi >= u.n) { return; }
  let iw = gi % u.W;
  let t = gi / u.W;
  let ih = t % u.H;
  let p = t / u.H;
  let base = p * u.H * u.W;
  let self_ = ih * u.W + iw;
  ${WINDOWS_CONTAINING}
  var acc = 0.0;
  for (var oh = oh0; oh < oh1; oh++) {
    for (var ow = ow0; ow < ow1; ow++) {
      if (windowArgmax(base, oh, ow) == self_) { acc += gy[(p * u.Ho + oh) * u.Wo + ow]; }
    }
  }
  gx[gi] = acc;`,
    { argmax: true },
  );
}

/**
 * Max-pool backward for non-overlapping windows (stride = kernel): one invocation per kernel-sized tile of the
 * input, tiles laid from −padding over Th × Tw = ceil((H + pH)/kH) × ceil((W + pW)/kW) so every input element
 * belongs to exactly one tile. A tile that is a pooling window finds its argmax once (the same scan as the forward
 * pass) and writes gy there and 0 elsewhere; tiles past the last window (rows/cols the forward pass never read)
 * write 0. No gather over windows and no scatter conflicts: kH·kW + 1 reads per window instead of (kH·kW)² .
 * Uniform: { n = N·C·Th·Tw, H, W, Ho, Wo, kH, kW, sH, sW, pH, pW, Th, Tw }. Bindings: gy, x, gx.
 */
export function maxPool2dBackwardTileKernel(): KernelSpec {
  return poolKernel(
    'maxPool2dBackward:tile',
    ['gy', 'x'],
    'gx',
    `if (gi >= u.n) { return; }
  let ow = gi % u.Tw;
  let t = gi / u.Tw;
  let oh = t % u.Th;
  let p = t / u.Th;
  let base = p * u.H * u.W;
  ${WINDOW}
  var bi = 0xffffffffu;
  var g = 0.0;
  if (oh < u.Ho && ow < u.Wo) {
    bi = windowArgmax(base, oh, ow);
    g = gy[(p * u.Ho + oh) * u.Wo + ow];
  }
  for (var h = h0; h < h1; h++) {
    for (var w = w0; w < w1; w++) {
      let i = h * u.W + w;
      gx[base + i] = select(0.0, g, i == bi);
    }
  }`,
    { argmax: true, extra: ['Th', 'Tw'] },
  );
}

/** out = Σ window / (kH·kW) (count_include_pad). Bindings: x, out. */
export function avgPool2dKernel(): KernelSpec {
  return poolKernel(
    'avgPool2d',
    ['x'],
    'out',
    `if (gi >= u.n) { return; }
  let ow = gi % u.Wo;
  let t = gi / u.Wo;
  let oh = t % u.Ho;
  let p = t / u.Ho;
  let base = p * u.H * u.W;
  ${WINDOW}
  var acc = 0.0;
  for (var h = h0; h < h1; h++) {
    for (var w = w0; w < w1; w++) { acc += x[base + h * u.W + w]; }
  }
  out[gi] = acc / f32(u.kH * u.kW);`,
  );
}

/** gx = Σ over windows containing the element of gy / (kH·kW), gathered per input element. Bindings: gy, gx. */
export function avgPool2dBackwardKernel(): KernelSpec {
  return poolKernel(
    'avgPool2dBackward',
    ['gy'],
    'gx',
    `if (gi >= u.n) { return; }
  let iw = gi % u.W;
  let t = gi / u.W;
  let ih = t % u.H;
  let p = t / u.H;
  ${WINDOWS_CONTAINING}
  var acc = 0.0;
  for (var oh = oh0; oh < oh1; oh++) {
    for (var ow = ow0; ow < ow1; ow++) { acc += gy[(p * u.Ho + oh) * u.Wo + ow]; }
  }
  gx[gi] = acc / f32(u.kH * u.kW);`,
  );
}
