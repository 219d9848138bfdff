/** @file Raw spatial-transformer ops: affineGrid, bilinear zero-padded gridSample and its input/grid gradients (torch semantics). */
import {
  affineGridKernel,
  fillKernel,
  fixedPointToF32Kernel,
  gridSampleGridGradKernel,
  gridSampleInputGradScatterKernel,
  gridSampleKernel,
  linearDispatch,
} from '@metagrad/kernels-wgsl';
import { DTypeError, ShapeError } from '../errors';
import { assertSameDevice, type Shape, type Tensor } from '../tensor';
import { empty } from './creation';
import { checkBoolean, checkOptions, checkShapeArg, checkTensors, fmt, recordInto, UniformWriter } from './util';

export interface GridSampleOptions {
  alignCorners?: boolean;
}

function checkF32(op: string, operands: Record<string, Tensor>): void {
  checkTensors(op, operands);
  const ts = Object.values(operands);
  for (const t of ts) if (t.dtype !== 'f32') throw new DTypeError(`${op}: expects f32 tensors, got ${t.dtype} ${fmt(t.shape)}`);
  for (const t of ts.slice(1)) assertSameDevice(ts[0], t);
}

/** torch.nn.functional.affine_grid for 2-D: theta [N, 2, 3], size [N, C, H, W] → grid [N, H, W, 2]. */
export function affineGrid(theta: Tensor, size: Shape, alignCorners = false): Tensor {
  checkF32('affineGrid', { theta });
  checkBoolean('affineGrid', 'alignCorners', alignCorners);
  checkShapeArg('affineGrid', size, 'size');
  if (size.length !== 4) throw new ShapeError(`affineGrid: size must be [N, C, H, W], got ${fmt(size)}`);
  const [N, , H, W] = size;
  if (theta.rank !== 3 || theta.shape[0] !== N || theta.shape[1] !== 2 || theta.shape[2] !== 3) {
    throw new ShapeError(`affineGrid: theta ${fmt(theta.shape)} must be [N, 2, 3] for size ${fmt(size)}`);
  }
  const out = empty([N, H, W, 2], 'f32', theta.device);
  const n = N * H * W;
  if (n === 0) return out;
  const u = new UniformWriter()
    .u32(n)
    .u32(H)
    .u32(W)
    .u32(alignCorners ? 1 : 0)
    .finish();
  return recordInto(out, () => theta.device.dispatch(affineGridKernel(), [theta.buffer, out.buffer], u, linearDispatch(n)));
}

interface Geo {
  N: number;
  C: number;
  H: number;
  W: number;
  Ho: number;
  Wo: number;
}

function geometry(op: string, xShape: Shape, grid: Tensor, opts: unknown): Geo {
  checkShapeArg(op, xShape, 'input shape');
  checkOptions(op, opts, ['alignCorners']);
  const align = (opts as GridSampleOptions | null | undefined)?.alignCorners;
  if (align !== undefined) checkBoolean(op, 'alignCorners', align);
  if (xShape.length !== 4) throw new ShapeError(`${op}: input must be [N, C, H, W], got ${fmt(xShape)}`);
  const [N, C, H, W] = xShape;
  const g = grid.shape;
  if (g.length !== 4 || g[0] !== N || g[3] !== 2) throw new ShapeError(`${op}: grid ${fmt(g)} must be [N, Ho, Wo, 2] for input ${fmt(xShape)}`);
  return { N, C, H, W, Ho: g[1], Wo: g[2] };
}

function checkGy(op: string, geo: Geo, gy: Tensor): void {
  const want = [geo.N, geo.C, geo.Ho, geo.Wo];
  if (gy.rank !== 4 || gy.shape.some((d, i) => d !== want[i])) throw new ShapeError(`${op}: grad_output ${fmt(gy.shape)} must be ${fmt(want)}`);
}

function gsUniform(geo: Geo, alignCorners: boolean): Uint32Array {
  return new UniformWriter().u32s([geo.N * geo.Ho * geo.Wo, geo.C, geo.H, geo.W, geo.Ho * geo.Wo, alignCorners ? 1 : 0]).finish();
}

/** torch.nn.functional.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners). */
export function gridSample(x: Tensor, grid: Tensor, opts: GridSampleOptions = {}): Tensor {
  checkF32('gridSample', { x, grid });
  const geo = geometry('gridSample', x.shape, grid, opts);
  const out = empty([geo.N, geo.C, geo.Ho, geo.Wo], 'f32', x.device);
  const nq = geo.N * geo.Ho * geo.Wo;
  if (out.size === 0) return out;
  return recordInto(out, () =>
    x.device.dispatch(gridSampleKernel(), [x.buffer, grid.buffer, out.buffer], gsUniform(geo, opts?.alignCorners ?? false), linearDispatch(nq)),
  );
}

/**
 * grid_sampler_2d_backward's grad_input. Each output location scatters into its 4 corners; to stay deterministic
 * the scatter accumulates in 64-bit fixed point (i32 integer part + 2^-32 fraction, exact integer atomics, see
 * gridSampleInputGradScatterKernel), then converts to f32. Absolute error ≤ (contributions)·2^-32 before the
 * final f32 rounding; sums must stay within ±2^31.
 */
export function gridSampleInputGrad(gy: Tensor, grid: Tensor, inputShape: Shape, opts: GridSampleOptions = {}): Tensor {
  checkF32('gridSampleInputGrad', { gy, grid });
  const geo = geometry('gridSampleInputGrad', inputShape, grid, opts);
  checkGy('gridSampleInputGrad', geo, gy);
  const device = gy.device;
  const out = empty([...inputShape], 'f32', device);
  if (out.size === 0) return out;
  return recordInto(out, () => {
    const acc = empty([2 * out.size], 'u32', device);
    try {
      device.dispatch(fillKernel({ dtype: 'u32' }), [acc.buffer], new Uint32Array([acc.size, 0]), linearDispatch(acc.size));
      const nq = geo.N * geo.Ho * geo.Wo;
      if (nq > 0 && geo.C > 0) {
        device.dispatch(
          gridSampleInputGradScatterKernel(),
          [gy.buffer, grid.buffer, acc.buffer],
          gsUniform(geo, opts?.alignCorners ?? false),
          linearDispatch(nq),
        );
      }
      device.dispatch(fixedPointToF32Kernel(), [acc.buffer, out.buffer], new UniformWriter().u32(out.size).finish(), linearDispatch(out.size));
    } finally {
      acc.dispose();
    }
  });
}

/** grid_sampler_2d_backward's grad_grid → [N, Ho, Wo, 2] (a per-grid-point gather; deterministic). */
export function gridSampleGridGrad(gy: Tensor, x: Tensor, grid: Tensor, opts: GridSampleOptions = {}): Tensor {
  checkF32('gridSampleGridGrad', { gy, x, grid });
  const geo = geometry('gridSampleGridGrad', x.shape, grid, opts);
  checkGy('gridSampleGridGrad', geo, gy);
  const out = empty([geo.N, geo.Ho, geo.Wo, 2], 'f32', x.device);
  const nq = geo.N * geo.Ho * geo.Wo;
  if (nq === 0) return out;
  return recordInto(out, () =>
    x.device.dispatch(
      gridSampleGridGradKernel(),
      [gy.buffer, x.buffer, grid.buffer, out.buffer],
      gsUniform(geo, opts?.alignCorners ?? false),
      linearDispatch(nq),
    ),
  );
}
