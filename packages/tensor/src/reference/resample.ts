/** @file Reference spatial-transformer ops: affineGrid, bilinear zero-padded gridSample and both its gradients (torch). */

import { ShapeError } from '../errors';
import { checkBoolean, checkOptions } from './args';
import { type RefTensor, expectRank, shapeStr } from './types';

export interface GridSampleOptions {
  alignCorners?: boolean;
}

/**
 * The normalized coordinate of pixel i of n along one axis: alignCorners puts −1/1 on the outer pixel
 * centers, otherwise on the outer pixel edges. n = 1 gives 0 in both modes (torch's linspace special case).
 */
function baseCoord(i: number, n: number, alignCorners: boolean): number {
  if (n <= 1) return 0;
  return alignCorners ? -1 + (2 * i) / (n - 1) : (2 * i + 1) / n - 1;
}

/** torch.nn.functional.affine_grid for 2-D: grid[n,h,w] = theta[n] · (x_w, y_h, 1). */
export function affineGrid(theta: RefTensor, size: readonly number[], alignCorners = false): RefTensor {
  checkBoolean('affineGrid', 'alignCorners', alignCorners);
  expectRank([...size], 4, 'affineGrid size');
  const [N, , H, W] = size;
  if (theta.shape.length !== 3 || theta.shape[0] !== N || theta.shape[1] !== 2 || theta.shape[2] !== 3) {
    throw new ShapeError(`affineGrid: theta ${shapeStr(theta.shape)} must be [N, 2, 3] for size ${shapeStr(size)}`);
  }
  const out = new Float64Array(N * H * W * 2);
  for (let n = 0; n < N; n++) {
    const t = theta.data.subarray(n * 6, n * 6 + 6);
    for (let h = 0; h < H; h++) {
      const y = baseCoord(h, H, alignCorners);
      for (let w = 0; w < W; w++) {
        const x = baseCoord(w, W, alignCorners);
        const o = ((n * H + h) * W + w) * 2;
        out[o] = t[0] * x + t[1] * y + t[2];
        out[o + 1] = t[3] * x + t[4] * y + t[5];
      }
    }
  }
  return { shape: [N, H, W, 2], data: out };
}

/** Normalized [−1, 1] → pixel coordinate, and d(pixel)/d(normalized) (torch's gix_mult). */
function unnormalize(coord: number, size: number, alignCorners: boolean): number {
  return alignCorners ? ((coord + 1) / 2) * (size - 1) : ((coord + 1) * size - 1) / 2;
}
function unnormalizeScale(size: number, alignCorners: boolean): number {
  return alignCorners ? (size - 1) / 2 : size / 2;
}

interface Geo {
  N: number;
  C: number;
  H: number;
  W: number;
  Ho: number;
  Wo: number;
}

function geometry(xShape: readonly number[], grid: RefTensor, op: string): Geo {
  expectRank([...xShape], 4, `${op} input`);
  const [N, C, H, W] = xShape;
  const g = grid.shape;
  if (g.length !== 4 || g[0] !== N || g[3] !== 2) {
    throw new ShapeError(`${op}: grid ${shapeStr(g)} must be [N, Ho, Wo, 2] for input ${shapeStr(xShape)}`);
  }
  return { N, C, H, W, Ho: g[1], Wo: g[2] };
}

/**
 * Calls f for each output location and each of its 4 bilinear corners that lies inside the input, with the
 * corner's plane offset (h·W + w), its weight, and the weight's derivatives w.r.t. the pixel coordinates
 * (ix, iy). Out-of-range corners are skipped: that is zero padding. All three ops share this enumeration,
 * so the input gradient is the exact adjoint of gridSample and the grid gradient is its exact derivative.
 */
function forEachCorner(
  geo: Geo,
  grid: RefTensor,
  alignCorners: boolean,
  f: (n: number, q: number, plane: number, wt: number, dix: number, diy: number) => void,
): void {
  const { N, H, W, Ho, Wo } = geo;
  for (let n = 0; n < N; n++) {
    for (let p = 0; p < Ho * Wo; p++) {
      const q = n * Ho * Wo + p;
      const ix = unnormalize(grid.data[2 * q], W, alignCorners);
      const iy = unnormalize(grid.data[2 * q + 1], H, alignCorners);
      const x0 = Math.floor(ix);
      const y0 = Math.floor(iy);
      const fx = ix - x0; // = ix − ix_nw
      const fy = iy - y0;
      const gx = x0 + 1 - ix; // = ix_se − ix
      const gy = y0 + 1 - iy;
      const corner = (cx: number, cy: number, wt: number, dix: number, diy: number) => {
        if (cx >= 0 && cx < W && cy >= 0 && cy < H) f(n, p, cy * W + cx, wt, dix, diy);
      };
      corner(x0, y0, gx * gy, -gy, -gx); // nw
      corner(x0 + 1, y0, fx * gy, gy, -fx); // ne
      corner(x0, y0 + 1, gx * fy, -fy, gx); // sw
      corner(x0 + 1, y0 + 1, fx * fy, fy, fx); // se
    }
  }
}

/** The checked alignCorners of a gridSample-family options object (a typo'd key or 'false' is an error, as the raw ops). */
function alignOf(op: string, opts: GridSampleOptions | undefined): boolean {
  const { alignCorners = false } = checkOptions(op, opts, ['alignCorners']) as GridSampleOptions;
  return checkBoolean(op, 'alignCorners', alignCorners);
}

/** torch.nn.functional.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners). */
export function gridSample(x: RefTensor, grid: RefTensor, opts: GridSampleOptions = {}): RefTensor {
  const geo = geometry(x.shape, grid, 'gridSample');
  const { C, H, W, Ho, Wo } = geo;
  const out = new Float64Array(geo.N * C * Ho * Wo);
  forEachCorner(geo, grid, alignOf('gridSample', opts), (n, p, plane, wt) => {
    for (let c = 0; c < C; c++) out[(n * C + c) * Ho * Wo + p] += wt * x.data[(n * C + c) * H * W + plane];
  });
  return { shape: [geo.N, C, Ho, Wo], data: out };
}

function checkGy(geo: Geo, gy: RefTensor, op: string): void {
  const want = [geo.N, geo.C, geo.Ho, geo.Wo];
  if (gy.shape.length !== 4 || gy.shape.some((d, i) => d !== want[i])) {
    throw new ShapeError(`${op}: grad_output ${shapeStr(gy.shape)} must be ${shapeStr(want)}`);
  }
}

/** grid_sampler_2d_backward's grad_input: each gy scattered to its 4 corners with the bilinear weights. */
export function gridSampleInputGrad(gy: RefTensor, grid: RefTensor, inputShape: readonly number[], opts: GridSampleOptions = {}): RefTensor {
  const geo = geometry(inputShape, grid, 'gridSampleInputGrad');
  checkGy(geo, gy, 'gridSampleInputGrad');
  const { C, H, W, Ho, Wo } = geo;
  const gx = new Float64Array(geo.N * C * H * W);
  forEachCorner(geo, grid, alignOf('gridSampleInputGrad', opts), (n, p, plane, wt) => {
    for (let c = 0; c < C; c++) gx[(n * C + c) * H * W + plane] += wt * gy.data[(n * C + c) * Ho * Wo + p];
  });
  return { shape: [...inputShape], data: gx };
}

/**
 * grid_sampler_2d_backward's grad_grid: Σ_c gy·x(corner)·∂weight/∂(ix, iy), times d(pixel)/d(normalized).
 * Out-of-range corners contribute nothing (zeros padding), exactly as torch.
 */
export function gridSampleGridGrad(gy: RefTensor, x: RefTensor, grid: RefTensor, opts: GridSampleOptions = {}): RefTensor {
  const align = alignOf('gridSampleGridGrad', opts);
  const geo = geometry(x.shape, grid, 'gridSampleGridGrad');
  checkGy(geo, gy, 'gridSampleGridGrad');
  const { C, H, W, Ho, Wo } = geo;
  const gg = new Float64Array(geo.N * Ho * Wo * 2);
  forEachCorner(geo, grid, align, (n, p, plane, _wt, dix, diy) => {
    let s = 0;
    for (let c = 0; c < C; c++) s += x.data[(n * C + c) * H * W + plane] * gy.data[(n * C + c) * Ho * Wo + p];
    const q = n * Ho * Wo + p;
    gg[2 * q] += s * dix;
    gg[2 * q + 1] += s * diy;
  });
  const mx = unnormalizeScale(W, align);
  const my = unnormalizeScale(H, align);
  for (let q = 0; q < gg.length; q += 2) {
    gg[q] *= mx;
    gg[q + 1] *= my;
  }
  return { shape: [geo.N, Ho, Wo, 2], data: gg };
}
