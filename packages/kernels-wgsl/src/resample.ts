/** @file WGSL generators for spatial transformers: affineGrid, bilinear zero-padded gridSample and both its gradients (torch semantics). */
import { LINEAR_WG } from './basic';
import { memoKernel } from './render';
import type { KernelSpec } from './types';

const resampleCache = new Map<string, KernelSpec>();

/** Normalised grid coordinate → pixel coordinate (torch's grid_sampler_unnormalize); `align` is a u32 flag. */
const UNNORMALIZE = `
fn unnormalize(coord: f32, size: u32, align: u32) -> f32 {
  if (align != 0u) { return (coord + 1.0) * 0.5 * f32(size - 1u); }
  return ((coord + 1.0) * f32(size) - 1.0) * 0.5;
}`;

/**
 * The four bilinear corners of grid point q: pixel coordinates (ix, iy), the north-west corner (x0, y0) and the
 * fractional offsets; a corner is used only when inside the input (zero padding).
 */
const CORNERS = `
  let ix = unnormalize(grid[2u * q], u.W, u.align);
  let iy = unnormalize(grid[2u * q + 1u], u.H, u.align);
  let fx0 = floor(ix);
  let fy0 = floor(iy);
  let fx = ix - fx0;
  let fy = iy - fy0;
  let gx = 1.0 - fx;
  let gy_ = 1.0 - fy;
  let x0 = i32(fx0);
  let y0 = i32(fy0);
  let inX0 = x0 >= 0 && x0 < i32(u.W);
  let inX1 = x0 + 1 >= 0 && x0 + 1 < i32(u.W);
  let inY0 = y0 >= 0 && y0 < i32(u.H);
  let inY1 = y0 + 1 >= 0 && y0 + 1 < i32(u.H);
  let pNW = u32(y0) * u.W + u32(x0);
  let pNE = pNW + 1u;
  let pSW = pNW + u.W;
  let pSE = pSW + 1u;`;

/** Uniform of gridSample and its gradients: { nq: N·Ho·Wo, C, H, W, HoWo, align }. */
const GS_FIELDS = ['nq', 'C', 'H', 'W', 'HoWo', 'align'].map((f) => [f, 'u32'] as const);

/** grid[n, h, w] = theta[n] · (x_w, y_h, 1). Uniform: { n: N·H·W, H, W, align }. */
export function affineGridKernel(): KernelSpec {
  return memoKernel(resampleCache, 'affineGrid', () => ({
    name: 'affineGrid',
    inputs: [{ name: 'theta', dtype: 'f32' }],
    outputs: [{ name: 'grid', dtype: 'f32' }],
    uniforms: ['n', 'H', 'W', 'align'].map((f) => [f, 'u32'] as const),
    workgroupSize: LINEAR_WG,
    functions: `// Pixel i of n along one axis; n = 1 gives 0 in both modes (torch's linspace special case).
fn baseCoord(i: u32, n: u32) -> f32 {
  if (n <= 1u) { return 0.0; }
  if (u.align != 0u) { return -1.0 + 2.0 * f32(i) / f32(n - 1u); }
  return (2.0 * f32(i) + 1.0) / f32(n) - 1.0;
}`,
    body: `if (gi >= u.n) { return; }
  let w = gi % u.W;
  let t = gi / u.W;
  let h = t % u.H;
  let n = t / u.H;
  let x = baseCoord(w, u.W);
  let y = baseCoord(h, u.H);
  let b = n * 6u;
  grid[2u * gi] = theta[b] * x + theta[b + 1u] * y + theta[b + 2u];
  grid[2u * gi + 1u] = theta[b + 3u] * x + theta[b + 4u] * y + theta[b + 5u];`,
  }));
}

/** out[n, c, p] = Σ_corners weight · x[n, c, corner], one invocation per output location looping over channels. */
export function gridSampleKernel(): KernelSpec {
  return memoKernel(resampleCache, 'gridSample', () => ({
    name: 'gridSample',
    inputs: [
      { name: 'x', dtype: 'f32' },
      { name: 'grid', dtype: 'f32' },
    ],
    outputs: [{ name: 'out', dtype: 'f32' }],
    uniforms: GS_FIELDS,
    workgroupSize: LINEAR_WG,
    functions: `${UNNORMALIZE}`,
    body: `let q = gi;
  if (q >= u.nq) { return; }
  let n = q / u.HoWo;
  let p = q - n * u.HoWo;
  ${CORNERS}
  let wNW = select(0.0, gx * gy_, inX0 && inY0);
  let wNE = select(0.0, fx * gy_, inX1 && inY0);
  let wSW = select(0.0, gx * fy, inX0 && inY1);
  let wSE = select(0.0, fx * fy, inX1 && inY1);
  let plane = u.H * u.W;
  for (var c = 0u; c < u.C; c++) {
    let b = (n * u.C + c) * plane;
    var acc = 0.0;
    if (inX0 && inY0) { acc += wNW * x[b + pNW]; }
    if (inX1 && inY0) { acc += wNE * x[b + pNE]; }
    if (inX0 && inY1) { acc += wSW * x[b + pSW]; }
    if (inX1 && inY1) { acc += wSE * x[b + pSE]; }
    out[(n * u.C + c) * u.HoWo + p] = acc;
  }`,
  }));
}

/**
 * grad_input of gridSample, scattered with deterministic 64-bit fixed-point atomics: each contribution v is split
 * exactly into an integer part (i32, high word) and a fraction quantised to 2^-32 (u32, low word); the low add's
 * carry is detected from atomicAdd's old value. Integer addition is associative, so the sum is bit-identical
 * whatever the order. Precision: each contribution is truncated by < 2^-32 (absolute); range |sum| < 2^31.
 * acc holds [lo, hi] pairs per input element and must start at zero. Bindings: gy, grid, acc.
 */
export function gridSampleInputGradScatterKernel(): KernelSpec {
  return memoKernel(resampleCache, 'gridSampleInputGrad:scatter', () => ({
    name: 'gridSampleInputGrad:scatter',
    inputs: [
      { name: 'gy', dtype: 'f32' },
      { name: 'grid', dtype: 'f32' },
    ],
    outputs: [{ name: 'acc', dtype: 'u32', atomic: true }],
    uniforms: GS_FIELDS,
    workgroupSize: LINEAR_WG,
    functions: `${UNNORMALIZE}
fn addFixed(i: u32, v: f32) {
  let whole = floor(v);
  let lo = u32((v - whole) * 4294967296.0);
  let old = atomicAdd(&acc[2u * i], lo);
  let carry = select(0u, 1u, old + lo < old);
  atomicAdd(&acc[2u * i + 1u], bitcast<u32>(i32(whole)) + carry);
}`,
    body: `let q = gi;
  if (q >= u.nq) { return; }
  let n = q / u.HoWo;
  let p = q - n * u.HoWo;
  ${CORNERS}
  let plane = u.H * u.W;
  for (var c = 0u; c < u.C; c++) {
    let g = gy[(n * u.C + c) * u.HoWo + p];
    let b = (n * u.C + c) * plane;
    if (inX0 && inY0) { addFixed(b + pNW, gx * gy_ * g); }
    if (inX1 && inY0) { addFixed(b + pNE, fx * gy_ * g); }
    if (inX0 && inY1) { addFixed(b + pSW, gx * fy * g); }
    if (inX1 && inY1) { addFixed(b + pSE, fx * fy * g); }
  }`,
  }));
}

/** out[i] = hi[i] + lo[i]·2^-32 from the fixed-point accumulator. Uniform: { n }. Bindings: acc, out. */
export function fixedPointToF32Kernel(): KernelSpec {
  return memoKernel(resampleCache, 'fixedPointToF32', () => ({
    name: 'fixedPointToF32',
    inputs: [{ name: 'acc', dtype: 'u32' }],
    outputs: [{ name: 'out', dtype: 'f32' }],
    uniforms: ['n'].map((f) => [f, 'u32'] as const),
    workgroupSize: LINEAR_WG,
    body: `if (gi >= u.n) { return; }
  out[gi] = f32(bitcast<i32>(acc[2u * gi + 1u])) + f32(acc[2u * gi]) * 2.3283064365386963e-10;`,
  }));
}

/**
 * grad_grid: Σ_c gy · x(corner) · ∂weight/∂(ix, iy) over in-range corners, times d(pixel)/d(normalised).
 * One invocation per grid point (a gather: no atomics). Bindings: gy, x, grid, out.
 */
export function gridSampleGridGradKernel(): KernelSpec {
  return memoKernel(resampleCache, 'gridSampleGridGrad', () => ({
    name: 'gridSampleGridGrad',
    inputs: [
      { name: 'gy', dtype: 'f32' },
      { name: 'x', dtype: 'f32' },
      { name: 'grid', dtype: 'f32' },
    ],
    outputs: [{ name: 'out', dtype: 'f32' }],
    uniforms: GS_FIELDS,
    workgroupSize: LINEAR_WG,
    functions: `${UNNORMALIZE}`,
    body: `let q = gi;
  if (q >= u.nq) { return; }
  let n = q / u.HoWo;
  let p = q - n * u.HoWo;
  ${CORNERS}
  var sNW = 0.0;
  var sNE = 0.0;
  var sSW = 0.0;
  var sSE = 0.0;
  let plane = u.H * u.W;
  for (var c = 0u; c < u.C; c++) {
    let g = gy[(n * u.C + c) * u.HoWo + p];
    let b = (n * u.C + c) * plane;
    if (inX0 && inY0) { sNW += x[b + pNW] * g; }
    if (inX1 && inY0) { sNE += x[b + pNE] * g; }
    if (inX0 && inY1) { sSW += x[b + pSW] * g; }
    if (inX1 && inY1) { sSE += x[b + pSE] * g; }
  }
  // d weight / d ix: nw −gy_, ne gy_, sw −fy, se fy; d weight / d iy: nw −gx, ne −fx, sw gx, se fx.
  let dix = -sNW * gy_ + sNE * gy_ - sSW * fy + sSE * fy;
  let diy = -sNW * gx - sNE * fx + sSW * gx + sSE * fx;
  var mx = f32(u.W) * 0.5;
  var my = f32(u.H) * 0.5;
  if (u.align != 0u) { mx = f32(u.W - 1u) * 0.5; my = f32(u.H - 1u) * 0.5; }
  out[2u * q] = dix * mx;
  out[2u * q + 1u] = diy * my;`,
  }));
}
