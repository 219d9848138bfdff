/** @file Differentiable conv2d and its two backward convolutions, each a primitive whose VJP is again a convolution. */
import * as raw from '@metagrad/tensor/raw';
import type { Shape, Tensor } from '@metagrad/tensor';
import type { Conv2dAttrs, RuleTable } from '../prims';
import { record } from '../record';

export type ConvPrim = 'conv2d' | 'conv2dInputGrad' | 'conv2dFilterGrad';
export type Conv2dOptions = Conv2dAttrs;

/** NCHW convolution x[N,C,H,W] ⋆ w[O,C/g,kH,kW] → [N,O,Ho,Wo] (no bias: add it with broadcasting). */
export function conv2d(x: Tensor, w: Tensor, opts: Conv2dOptions = {}): Tensor {
  return record('conv2d', [x, w], raw.conv2d(x, w, opts), { ...opts }, () => [x, w]);
}

/** torch's grad_input: linear in gy and in w. */
export function conv2dInputGrad(gy: Tensor, w: Tensor, inputShape: Shape, opts: Conv2dOptions = {}): Tensor {
  return record('conv2dInputGrad', [gy, w], raw.conv2dInputGrad(gy, w, inputShape, opts), { ...opts }, () => [gy, w]);
}

/** torch's grad_weight: linear in x and in gy. */
export function conv2dFilterGrad(x: Tensor, gy: Tensor, filterShape: Shape, opts: Conv2dOptions = {}): Tensor {
  return record('conv2dFilterGrad', [x, gy], raw.conv2dFilterGrad(x, gy, filterShape, opts), { ...opts }, () => [x, gy]);
}

/**
 * The three ops are bilinear forms of one trilinear pairing ⟨gy, conv2d(x, w)⟩, so each one's VJP is
 * one of the other two (or conv2d itself) with the arguments rotated.
 */
export const convRules: RuleTable<ConvPrim> = {
  conv2d: ({ gy, saved: [x, w], attrs, inputShapes: [sx, sw], needs }) => [
    needs[0] ? conv2dInputGrad(gy, w, sx, attrs) : null,
    needs[1] ? conv2dFilterGrad(x, gy, sw, attrs) : null,
  ],
  // out = inputGrad(g, w) with ⟨out, ggx⟩ = ⟨conv2d(ggx, w), g⟩ = ⟨w, filterGrad(ggx, g)⟩.
  conv2dInputGrad: ({ gy: ggx, saved: [g, w], attrs, inputShapes: [, sw], needs }) => [
    needs[0] ? conv2d(ggx, w, attrs) : null,
    needs[1] ? conv2dFilterGrad(ggx, g, sw, attrs) : null,
  ],
  // out = filterGrad(x, g) with ⟨out, ggw⟩ = ⟨conv2d(x, ggw), g⟩ = ⟨x, inputGrad(g, ggw)⟩.
  conv2dFilterGrad: ({ gy: ggw, saved: [x, g], attrs, inputShapes: [sx], needs }) => [
    needs[0] ? conv2dInputGrad(g, ggw, sx, attrs) : null,
    needs[1] ? conv2d(x, ggw, attrs) : null,
  ],
};
