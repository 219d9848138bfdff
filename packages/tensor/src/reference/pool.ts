/** @file Reference NCHW max/avg pooling and their backward passes (torch semantics, ceil_mode=false). */

import { InvalidArgumentError, ShapeError } from '../errors';
import { checkOptions, show } from './args';
import { type RefTensor, expectRank, pair, shapeStr } from './types';

export interface Pool2dOptions {
  kernel: number | readonly [number, number];
  /** Defaults to the kernel. */
  stride?: number | readonly [number, number];
  padding?: number | readonly [number, number];
}

export interface PoolGeometry {
  N: number;
  C: number;
  H: number;
  W: number;
  kH: number;
  kW: number;
  sH: number;
  sW: number;
  pH: number;
  pW: number;
  Ho: number;
  Wo: number;
}

/** Ho = floor((H + 2p − k)/s) + 1. Padding must be ≤ k/2 (torch's rule: no window lies wholly in padding). */
export function poolGeometry(xShape: readonly number[], opts: Pool2dOptions, op = 'pool2d'): PoolGeometry {
  expectRank([...xShape], 4, `${op} input`);
  const [N, C, H, W] = xShape;
  checkOptions(op, opts, ['kernel', 'stride', 'padding']);
  if (opts === null || opts === undefined || opts.kernel === undefined)
    throw new InvalidArgumentError(`${op}: options need a kernel size ({ kernel, stride?, padding? }), got ${show(opts)}`);
  const [kH, kW] = pair(opts.kernel, 1, `${op} kernel`, 1);
  // stride null is a mistake, not "same as the kernel" (as the raw op).
  const [sH, sW] = pair(opts.stride === undefined ? [kH, kW] : opts.stride, 1, `${op} stride`, 1);
  const [pH, pW] = pair(opts.padding, 0, `${op} padding`, 0);
  if (2 * pH > kH || 2 * pW > kW) {
    throw new InvalidArgumentError(`${op}: padding [${pH}, ${pW}] must be at most half the kernel [${kH}, ${kW}]`);
  }
  const Ho = Math.floor((H + 2 * pH - kH) / sH) + 1;
  const Wo = Math.floor((W + 2 * pW - kW) / sW) + 1;
  if (Ho < 1 || Wo < 1) throw new ShapeError(`${op}: kernel [${kH}, ${kW}] larger than padded input ${shapeStr(xShape)}`);
  return { N, C, H, W, kH, kW, sH, sW, pH, pW, Ho, Wo };
}

/**
 * Offset (within one H×W plane) of the max of each window: first max in row-major scan, NaN wins (first NaN),
 * and an all −inf window picks its first in-bounds element — torch's CPU kernel does the same.
 */
function argmaxWindows(x: RefTensor, g: PoolGeometry): Int32Array {
  const { N, C, H, W, kH, kW, sH, sW, pH, pW, Ho, Wo } = g;
  const idx = new Int32Array(N * C * Ho * Wo);
  let q = 0;
  for (let p = 0; p < N * C; p++) {
    const base = p * H * W;
    for (let oh = 0; oh < Ho; oh++) {
      const h0 = Math.max(0, oh * sH - pH);
      const h1 = Math.min(H, oh * sH - pH + kH);
      for (let ow = 0; ow < Wo; ow++) {
        const w0 = Math.max(0, ow * sW - pW);
        const w1 = Math.min(W, ow * sW - pW + kW);
        let best = -Infinity;
        let bi = h0 * W + w0;
        for (let h = h0; h < h1 && best === best; h++) {
          for (let w = w0; w < w1; w++) {
            const v = x.data[base + h * W + w];
            if (v > best || v !== v) {
              best = v;
              bi = h * W + w;
              if (v !== v) break;
            }
          }
        }
        idx[q++] = bi;
      }
    }
  }
  return idx;
}

/** Max pooling; padding acts as −∞ (never selected over a real element). */
export function maxPool2d(x: RefTensor, opts: Pool2dOptions): RefTensor {
  const g = poolGeometry(x.shape, opts, 'maxPool2d');
  const idx = argmaxWindows(x, g);
  const plane = g.Ho * g.Wo;
  const out = new Float64Array(idx.length);
  for (let q = 0; q < idx.length; q++) out[q] = x.data[Math.floor(q / plane) * g.H * g.W + idx[q]];
  return { shape: [g.N, g.C, g.Ho, g.Wo], data: out };
}

function checkGy(g: PoolGeometry, gy: RefTensor, op: string): void {
  const want = [g.N, g.C, g.Ho, g.Wo];
  if (gy.shape.length !== 4 || gy.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(`${op}: grad_output ${shapeStr(gy.shape)} does not match the pooled shape ${shapeStr(want)}`);
  }
}

/** Routes each gy to its window's argmax; overlapping windows that share an argmax accumulate. */
export function maxPool2dBackward(gy: RefTensor, x: RefTensor, opts: Pool2dOptions): RefTensor {
  const g = poolGeometry(x.shape, opts, 'maxPool2dBackward');
  checkGy(g, gy, 'maxPool2dBackward');
  const idx = argmaxWindows(x, g);
  const plane = g.Ho * g.Wo;
  const gx = new Float64Array(x.data.length);
  for (let q = 0; q < idx.length; q++) gx[Math.floor(q / plane) * g.H * g.W + idx[q]] += gy.data[q];
  return { shape: [...x.shape], data: gx };
}

/** Visits every in-bounds element of every window with the window's flat output index. */
function forEachWindowTap(g: PoolGeometry, f: (xi: number, yi: number) => void): void {
  const { N, C, H, W, kH, kW, sH, sW, pH, pW, Ho, Wo } = g;
  let yi = 0;
  for (let p = 0; p < N * C; p++) {
    for (let oh = 0; oh < Ho; oh++) {
      for (let ow = 0; ow < Wo; ow++, yi++) {
        for (let h = Math.max(0, oh * sH - pH); h < Math.min(H, oh * sH - pH + kH); h++) {
          for (let w = Math.max(0, ow * sW - pW); w < Math.min(W, ow * sW - pW + kW); w++) f((p * H + h) * W + w, yi);
        }
      }
    }
  }
}

/**
 * Average pooling with count_include_pad = true. With ceil_mode=false every window lies inside the padded
 * input, so the divisor is always kH·kW (torch's clipped pool_size reduces to that).
 */
export function avgPool2d(x: RefTensor, opts: Pool2dOptions): RefTensor {
  const g = poolGeometry(x.shape, opts, 'avgPool2d');
  const out = new Float64Array(g.N * g.C * g.Ho * g.Wo);
  forEachWindowTap(g, (xi, yi) => {
    out[yi] += x.data[xi];
  });
  const div = g.kH * g.kW;
  return { shape: [g.N, g.C, g.Ho, g.Wo], data: out.map((v) => v / div) };
}

/** Adjoint of avgPool2d: each gy spread evenly (÷ kH·kW) over the in-bounds part of its window. */
export function avgPool2dBackward(gy: RefTensor, inputShape: readonly number[], opts: Pool2dOptions): RefTensor {
  const g = poolGeometry(inputShape, opts, 'avgPool2dBackward');
  checkGy(g, gy, 'avgPool2dBackward');
  const div = g.kH * g.kW;
  const gx = new Float64Array(g.N * g.C * g.H * g.W);
  forEachWindowTap(g, (xi, yi) => {
    gx[xi] += gy.data[yi] / div;
  });
  return { shape: [...inputShape], data: gx };
}
