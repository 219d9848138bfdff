/** @file Reference NCHW conv2d (stride, padding, dilation, groups) and its input/filter gradients, as torch. */

import { InvalidArgumentError, ShapeError } from '../errors';
import { checkOptions, show } from './args';
import { type RefTensor, expectRank, pair, shapeStr } from './types';

export interface Conv2dOptions {
  stride?: number | readonly [number, number];
  padding?: number | readonly [number, number];
  dilation?: number | readonly [number, number];
  groups?: number;
}

/** Everything the three conv loops need, derived once from the input and filter shapes. */
export interface ConvGeometry {
  N: number;
  C: number;
  H: number;
  W: number;
  O: number;
  kH: number;
  kW: number;
  groups: number;
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

/** Validates shapes and options; Ho = floor((H + 2p − d(k−1) − 1)/s) + 1 and must be ≥ 1. */
export function convGeometry(xShape: readonly number[], wShape: readonly number[], opts: Conv2dOptions = {}): ConvGeometry {
  expectRank([...xShape], 4, 'conv2d input');
  expectRank([...wShape], 4, 'conv2d filter');
  const [N, C, H, W] = xShape;
  const [O, Cw, kH, kW] = wShape;
  checkOptions('conv2d', opts, ['stride', 'padding', 'dilation', 'groups']);
  const o = opts ?? {};
  const [sH, sW] = pair(o.stride, 1, 'conv2d stride', 1);
  const [pH, pW] = pair(o.padding, 0, 'conv2d padding', 0);
  const [dH, dW] = pair(o.dilation, 1, 'conv2d dilation', 1);
  const groups = o.groups === undefined ? 1 : o.groups; // null is a mistake, not the default (as the raw op)
  if (!Number.isInteger(groups) || groups < 1) throw new InvalidArgumentError(`conv2d: groups must be a positive integer, got ${show(groups)}`);
  const desc = `input ${shapeStr(xShape)}, filter ${shapeStr(wShape)}, groups ${groups}`;
  if (C % groups !== 0 || O % groups !== 0 || Cw !== C / groups) {
    throw new ShapeError(`conv2d: channels do not fit: ${desc} (need C and O divisible by groups, filter dim 1 = C/groups)`);
  }
  const Ho = Math.floor((H + 2 * pH - dH * (kH - 1) - 1) / sH) + 1;
  const Wo = Math.floor((W + 2 * pW - dW * (kW - 1) - 1) / sW) + 1;
  if (Ho < 1 || Wo < 1 || kH < 1 || kW < 1) {
    throw new ShapeError(`conv2d: kernel larger than padded input: ${desc}, padding [${pH}, ${pW}], dilation [${dH}, ${dW}]`);
  }
  return { N, C, H, W, O, kH, kW, groups, Cg: C / groups, Og: O / groups, sH, sW, pH, pW, dH, dW, Ho, Wo };
}

/**
 * Visits every (output position, filter tap) pair that lands inside the input, handing the callback the
 * flat offsets into x, w and y. All three ops are this one loop nest with a different multiply-add, which
 * is what makes conv2dInputGrad / conv2dFilterGrad exact adjoints of conv2d.
 */
function forEachTap(g: ConvGeometry, f: (xi: number, wi: number, yi: number) => void): void {
  const { N, C, H, W, O, kH, kW, Cg, Og, sH, sW, pH, pW, dH, dW, Ho, Wo } = g;
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const grp = Math.floor(o / Og);
      for (let oh = 0; oh < Ho; oh++) {
        for (let ow = 0; ow < Wo; ow++) {
          const yi = ((n * O + o) * Ho + oh) * Wo + ow;
          for (let ci = 0; ci < Cg; ci++) {
            const c = grp * Cg + ci;
            for (let kh = 0; kh < kH; kh++) {
              const ih = oh * sH - pH + kh * dH;
              if (ih < 0 || ih >= H) continue;
              for (let kw = 0; kw < kW; kw++) {
                const iw = ow * sW - pW + kw * dW;
                if (iw < 0 || iw >= W) continue;
                f(((n * C + c) * H + ih) * W + iw, ((o * Cg + ci) * kH + kh) * kW + kw, yi);
              }
            }
          }
        }
      }
    }
  }
}

/** Cross-correlation as torch.nn.functional.conv2d (no bias). */
export function conv2d(x: RefTensor, w: RefTensor, opts: Conv2dOptions = {}): RefTensor {
  const g = convGeometry(x.shape, w.shape, opts);
  const y = new Float64Array(g.N * g.O * g.Ho * g.Wo);
  forEachTap(g, (xi, wi, yi) => {
    y[yi] += x.data[xi] * w.data[wi];
  });
  return { shape: [g.N, g.O, g.Ho, g.Wo], data: y };
}

function checkGy(g: ConvGeometry, gy: RefTensor, op: string): void {
  const want = [g.N, g.O, g.Ho, g.Wo];
  if (gy.shape.length !== 4 || gy.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(`${op}: grad_output ${shapeStr(gy.shape)} does not match the conv output ${shapeStr(want)}`);
  }
}

/**
 * torch's grad_input. Input rows/cols that no window reads (when (H + 2p − d(k−1) − 1) is not a multiple of
 * s) get zero, which is why the input shape must be passed rather than inferred.
 */
export function conv2dInputGrad(gy: RefTensor, w: RefTensor, inputShape: readonly number[], opts: Conv2dOptions = {}): RefTensor {
  const g = convGeometry(inputShape, w.shape, opts);
  checkGy(g, gy, 'conv2dInputGrad');
  const gx = new Float64Array(g.N * g.C * g.H * g.W);
  forEachTap(g, (xi, wi, yi) => {
    gx[xi] += gy.data[yi] * w.data[wi];
  });
  return { shape: [...inputShape], data: gx };
}

/** torch's grad_weight: correlation of the input with grad_output, summed over the batch. */
export function conv2dFilterGrad(x: RefTensor, gy: RefTensor, filterShape: readonly number[], opts: Conv2dOptions = {}): RefTensor {
  const g = convGeometry(x.shape, filterShape, opts);
  checkGy(g, gy, 'conv2dFilterGrad');
  const gw = new Float64Array(g.O * g.Cg * g.kH * g.kW);
  forEachTap(g, (xi, wi, yi) => {
    gw[wi] += x.data[xi] * gy.data[yi];
  });
  return { shape: [...filterShape], data: gw };
}
