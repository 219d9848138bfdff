/** @file Differentiable spatial-transformer ops (affineGrid, bilinear gridSample and its two gradients) and VJPs. */
import * as raw from '@metagrad/tensor/raw';
import type { Shape, Tensor } from '@metagrad/tensor';
import type { GridSampleAttrs, RuleTable } from '../prims';
import { record } from '../record';
import { add, addScalar, mul, mulScalar, rsubScalar, sub } from './elementwise';
import { matmul } from './linalg';
import { concat, gather, reshape, scatterAdd, slice } from './movement';
import { sum } from './reduce';

export type ResamplePrim = 'affineGrid' | 'gridSample' | 'gridSampleInputGrad' | 'gridSampleGridGrad';
export type GridSampleOptions = GridSampleAttrs;

/** theta [N,2,3] → sampling grid [N,H,W,2] for an output of `size` [N,C,H,W] (torch.nn.functional.affine_grid). */
export function affineGrid(theta: Tensor, size: Shape, alignCorners = false): Tensor {
  return record('affineGrid', [theta], raw.affineGrid(theta, size, alignCorners), { alignCorners });
}

export function gridSample(x: Tensor, grid: Tensor, opts: GridSampleOptions = {}): Tensor {
  return record('gridSample', [x, grid], raw.gridSample(x, grid, opts), { ...opts }, () => [x, grid]);
}

/** torch's grid_sampler_2d_backward grad_input: linear in gy. */
export function gridSampleInputGrad(gy: Tensor, grid: Tensor, inputShape: Shape, opts: GridSampleOptions = {}): Tensor {
  const out = raw.gridSampleInputGrad(gy, grid, inputShape, opts);
  return record('gridSampleInputGrad', [gy, grid], out, { ...opts }, () => [gy, grid]);
}

/** torch's grid_sampler_2d_backward grad_grid: linear in gy and in x. */
export function gridSampleGridGrad(gy: Tensor, x: Tensor, grid: Tensor, opts: GridSampleOptions = {}): Tensor {
  const out = raw.gridSampleGridGrad(gy, x, grid, opts);
  return record('gridSampleGridGrad', [gy, x, grid], out, { ...opts }, () => [gy, x, grid]);
}

/** Homogeneous base coordinates (x_w, y_h, 1) of every output pixel, [H·W, 3] (a constant). */
function baseCoordinates(outputShape: Shape, alignCorners: boolean, like: Tensor): Tensor {
  return raw.tidy(() => {
    const [, H, W] = outputShape;
    const identity = raw.tensor([1, 0, 0, 0, 1, 0], [1, 2, 3], 'f32', like.device);
    const xy = raw.reshape(raw.affineGrid(identity, [1, 1, H, W], alignCorners), [H * W, 2]);
    return raw.concat([xy, raw.ones([H * W, 1], 'f32', like.device)], 1);
  });
}

/** Bilinear corners in the order nw, ne, sw, se as (dx, dy) offsets from the floor of the sample point. */
const CORNERS: readonly (readonly [number, number])[] = [
  [0, 0],
  [1, 0],
  [0, 1],
  [1, 1],
];

/**
 * The VJP of gridSampleGridGrad, written out per bilinear corner in differentiable ops (gather/scatterAdd for
 * x, arithmetic on the grid's fractional parts), so that it can be differentiated again.
 * GG[n,p] = s ⊙ Σ_q S_q[n,p]·∇w_q(f), S_q = Σ_c gy·x(corner q); ∇w_q is affine in the fractions f, whose only
 * second derivatives are the mixed ones (±1), which gives the grid term.
 */
function gridGradVjp(gg: Tensor, gy: Tensor, x: Tensor, grid: Tensor, align: boolean, needs: readonly boolean[]): (Tensor | null)[] {
  const [N, C, H, W] = x.shape;
  const [, Ho, Wo] = grid.shape;
  const P = Ho * Wo;
  const sx = align ? (W - 1) / 2 : W / 2;
  const sy = align ? (H - 1) / 2 : H / 2;
  const component = (t: Tensor, k: number) => reshape(slice(t, [0, 0, 0, k], [N, Ho, Wo, k + 1]), [N, 1, P]);
  const fxAll = mulScalar(component(grid, 0), sx);
  const fyAll = mulScalar(component(grid, 1), sy);
  // Pixel coordinates ix = g·s + (W−1)/2 in both modes; the floors are constants.
  const px = raw.addScalar(fxAll, (W - 1) / 2);
  const py = raw.addScalar(fyAll, (H - 1) / 2);
  const x0 = raw.floor(px);
  const y0 = raw.floor(py);
  const fx = sub(addScalar(fxAll, (W - 1) / 2), x0);
  const fy = sub(addScalar(fyAll, (H - 1) / 2), y0);
  const gyFlat = reshape(gy, [N, C, P]);
  const xFlat = reshape(x, [N, C, H * W]);
  const a = mulScalar(component(gg, 0), sx);
  const b = mulScalar(component(gg, 1), sy);
  let dgy: Tensor | null = null;
  let dx: Tensor | null = null;
  let mixed: Tensor | null = null;
  for (const [dxc, dyc] of CORNERS) {
    const { index, inside } = cornerIndex(x0, y0, dxc, dyc, H, W, [N, C, P]);
    const value = mul(gather(xFlat, 2, index), inside);
    // ∂w/∂ix and ∂w/∂iy of this corner's weight (1−fx or fx) · (1−fy or fy).
    const wy = dyc ? fy : rsubScalar(fy, 1);
    const wx = dxc ? fx : rsubScalar(fx, 1);
    const dwdx = dxc ? wy : mulScalar(wy, -1);
    const dwdy = dyc ? wx : mulScalar(wx, -1);
    const e = add(mul(a, dwdx), mul(b, dwdy));
    if (needs[0]) dgy = accumulate(dgy, mul(value, e));
    if (needs[1]) dx = accumulate(dx, scatterAdd(raw.zeros([N, C, H * W], 'f32', x.device), 2, index, mul(mul(gyFlat, e), inside)));
    if (needs[2]) {
      const s = sum(mul(gyFlat, value), [1], true);
      mixed = accumulate(mixed, dxc === dyc ? s : mulScalar(s, -1));
    }
  }
  let dgrid: Tensor | null = null;
  if (needs[2] && mixed) {
    const scaled = mulScalar(mixed, sx * sy);
    const parts = [mul(component(gg, 1), scaled), mul(component(gg, 0), scaled)].map((t) => reshape(t, [N, Ho, Wo, 1]));
    dgrid = concat(parts, 3);
  }
  return [dgy && reshape(dgy, [N, C, Ho, Wo]), dx && reshape(dx, [N, C, H, W]), dgrid];
}

function accumulate(total: Tensor | null, term: Tensor): Tensor {
  return total ? add(total, term) : term;
}

/**
 * i32 flat index of one corner per (n, c, p) and its f32 inside-the-image mask. Outside corners get index 0 (an
 * out-of-range index is an error) and mask 0, which zeroes their gathered values and scattered updates.
 */
function cornerIndex(x0: Tensor, y0: Tensor, dx: number, dy: number, H: number, W: number, shape: Shape): { index: Tensor; inside: Tensor } {
  return raw.tidy(() => {
    const cx = raw.addScalar(x0, dx);
    const cy = raw.addScalar(y0, dy);
    const inside = raw.mul(
      raw.mul(raw.ge(cx, raw.full([], 0, 'f32', x0.device)), raw.le(cx, raw.full([], W - 1, 'f32', x0.device))),
      raw.mul(raw.ge(cy, raw.full([], 0, 'f32', x0.device)), raw.le(cy, raw.full([], H - 1, 'f32', x0.device))),
    );
    const flat = raw.add(raw.mulScalar(cy, W), cx);
    const index = raw.cast(raw.where(inside, flat, raw.full([], 0, 'f32', x0.device)), 'i32');
    return { index: raw.expand(index, shape), inside: raw.expand(inside, shape) };
  });
}

export const resampleRules: RuleTable<ResamplePrim> = {
  // grid = base · θᵀ per batch, so dθ = gᵀ · base.
  affineGrid: ({ gy, attrs, outputShape }) => {
    const [N, H, W] = outputShape;
    const base = baseCoordinates(outputShape, attrs.alignCorners, gy);
    return [matmul(reshape(gy, [N, H * W, 2]), base, { transA: true })];
  },
  gridSample: ({ gy, saved: [x, grid], attrs, inputShapes: [sx], needs }) => [
    needs[0] ? gridSampleInputGrad(gy, grid, sx, attrs) : null,
    needs[1] ? gridSampleGridGrad(gy, x, grid, attrs) : null,
  ],
  // out = inputGrad(g, grid) = Sᵀ g with S the sampling matrix: ⟨out, ggx⟩ = ⟨g, gridSample(ggx, grid)⟩.
  gridSampleInputGrad: ({ gy: ggx, saved: [g, grid], attrs, needs }) => [
    needs[0] ? gridSample(ggx, grid, attrs) : null,
    needs[1] ? gridSampleGridGrad(g, ggx, grid, attrs) : null,
  ],
  gridSampleGridGrad: ({ gy: gg, saved: [g, x, grid], attrs, needs }) => gridGradVjp(gg, g, x, grid, attrs.alignCorners ?? false, needs),
};
