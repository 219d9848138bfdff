/** @file Differentiable max/avg pooling and their backward primitives (max-pool backward's VJP is a window gather). */
import * as raw from '@metagrad/tensor/raw';
import { InvalidArgumentError, type Shape, type Tensor } from '@metagrad/tensor';
import type { Pool2dAttrs, RuleTable } from '../prims';
import { record } from '../record';
import { concat, gather, pad, permute, reshape, slice } from './movement';

export type PoolPrim = 'maxPool2d' | 'maxPool2dBackward' | 'avgPool2d' | 'avgPool2dBackward';
export type Pool2dOptions = Pool2dAttrs;

export function maxPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  return record('maxPool2d', [x], raw.maxPool2d(x, opts), { ...opts }, () => [x]);
}

/** Routes gy to the first maximum of each window; linear in gy, piecewise constant in x. */
export function maxPool2dBackward(gy: Tensor, x: Tensor, opts: Pool2dOptions): Tensor {
  return record('maxPool2dBackward', [gy, x], raw.maxPool2dBackward(gy, x, opts), { ...opts }, () => [x]);
}

export function avgPool2d(x: Tensor, opts: Pool2dOptions): Tensor {
  return record('avgPool2d', [x], raw.avgPool2d(x, opts), { ...opts });
}

export function avgPool2dBackward(gy: Tensor, inputShape: Shape, opts: Pool2dOptions): Tensor {
  return record('avgPool2dBackward', [gy], raw.avgPool2dBackward(gy, inputShape, opts), { ...opts });
}

/**
 * A window size as the raw pools read it. Checked here because maxPoolGather is public and builds its windows
 * itself: a typo'd key or a fractional stride would otherwise silently give other windows than the pool's.
 */
function pairOf(what: string, v: unknown, fallback: readonly [number, number], min: number): [number, number] {
  if (v !== undefined && typeof v !== 'number' && !(Array.isArray(v) && v.length === 2)) {
    throw new InvalidArgumentError(`maxPoolGather: ${what} must be a number or a pair [h, w], got ${raw.describeValue(v)}`);
  }
  const p: [number, number] = v === undefined ? [fallback[0], fallback[1]] : typeof v === 'number' ? [v, v] : [(v as number[])[0], (v as number[])[1]];
  if (!p.every((x) => Number.isInteger(x) && x >= min))
    throw new InvalidArgumentError(`maxPoolGather: ${what} must be integers >= ${min}, got ${raw.describeValue(p)}`);
  return p;
}

interface Windows {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  outH: number;
  outW: number;
}

function windowsOf(shape: Shape, opts: Pool2dOptions): Windows {
  raw.checkOptions('maxPoolGather', opts, ['kernel', 'stride', 'padding']);
  if (typeof opts !== 'object' || opts === null || opts.kernel === undefined) {
    throw new InvalidArgumentError(
      `maxPoolGather: options must be an object with a kernel size ({ kernel, stride?, padding? }), got ${raw.describeValue(opts)}`,
    );
  }
  const kernel = pairOf('kernel', opts.kernel, [1, 1], 1);
  const stride = pairOf('stride', opts.stride, kernel, 1);
  const padding = pairOf('padding', opts.padding, [0, 0], 0);
  const outH = Math.floor((shape[2] + 2 * padding[0] - kernel[0]) / stride[0]) + 1;
  const outW = Math.floor((shape[3] + 2 * padding[1] - kernel[1]) / stride[1]) + 1;
  if (!(outH > 0 && outW > 0)) throw new InvalidArgumentError(`pool windows: no output for input [${shape.join(', ')}] and ${JSON.stringify(opts)}`);
  return { kernel, stride, padding, outH, outW };
}

/**
 * Every pooling window's entries side by side: [N,C,H,W] → [N,C,Ho,Wo,kH·kW] in row-major window order,
 * built from pad/slice/concat so it is differentiable. Padding reads `fill`.
 */
function unfoldWindows(t: Tensor, win: Windows, fill: number): Tensor {
  const [N, C] = t.shape;
  const [pH, pW] = win.padding;
  const [kH, kW] = win.kernel;
  if (!pH && !pW && win.stride[0] === kH && win.stride[1] === kW) {
    // Non-overlapping windows (the usual 2×2/2 pool): one permute of the tiled view instead of kH·kW strided
    // slices and a concat, which made this the largest dispatch count of a CNN's HVP.
    const h = win.outH * kH;
    const w = win.outW * kW;
    const cropped = h === t.shape[2] && w === t.shape[3] ? t : slice(t, [0, 0, 0, 0], [N, C, h, w]);
    const tiles = permute(reshape(cropped, [N, C, win.outH, kH, win.outW, kW]), [0, 1, 2, 4, 3, 5]);
    return reshape(tiles, [N, C, win.outH, win.outW, kH * kW]);
  }
  const padded =
    pH || pW
      ? pad(
          t,
          [
            [0, 0],
            [0, 0],
            [pH, pH],
            [pW, pW],
          ],
          fill,
        )
      : t;
  const parts: Tensor[] = [];
  for (let ki = 0; ki < win.kernel[0]; ki++) {
    for (let kj = 0; kj < win.kernel[1]; kj++) {
      const part = slice(
        padded,
        [0, 0, ki, kj],
        [N, C, ki + win.stride[0] * (win.outH - 1) + 1, kj + win.stride[1] * (win.outW - 1) + 1],
        [1, 1, win.stride[0], win.stride[1]],
      );
      parts.push(reshape(part, [N, C, win.outH, win.outW, 1]));
    }
  }
  return parts.length === 1 ? parts[0] : concat(parts, 4);
}

/**
 * The adjoint of maxPool2dBackward in gy: for each window, the value of `t` at that window's first maximum
 * of `x` (argmax over the unfolded windows picks the first in row-major order, as the kernel does).
 */
export function maxPoolGather(t: Tensor, x: Tensor, opts: Pool2dOptions): Tensor {
  raw.checkTensors('maxPoolGather', { t, x });
  if (x.rank !== 4) throw new raw.ShapeError(`maxPoolGather: x must be rank 4 (NCHW), got [${x.shape.join(', ')}]`);
  const win = windowsOf(x.shape, opts);
  const first = firstMaxIndex(x, win);
  const picked = gather(unfoldWindows(t, win, 0), 4, first);
  first.dispose();
  return reshape(picked, [x.shape[0], x.shape[1], win.outH, win.outW]);
}

/** i32 [N,C,Ho,Wo,1]: which window entry holds the first maximum. x only selects, so nothing is recorded. */
function firstMaxIndex(x: Tensor, win: Windows): Tensor {
  return raw.tidy(() => {
    const constant = x.view(x.shape); // node-less, and still pinned when x is a saved tensor
    return raw.argmax(unfoldWindows(constant, win, -Infinity), 4, true);
  });
}

export const poolRules: RuleTable<PoolPrim> = {
  maxPool2d: ({ gy, saved: [x], attrs }) => [maxPool2dBackward(gy, x, attrs)],
  // Linear in gy; the position of each maximum is locally constant in x, so x gets no gradient.
  maxPool2dBackward: ({ gy: ggx, saved: [x], attrs, needs }) => [needs[0] ? maxPoolGather(ggx, x, attrs) : null, null],
  avgPool2d: ({ gy, attrs, inputShapes: [shape] }) => [avgPool2dBackward(gy, shape, attrs)],
  avgPool2dBackward: ({ gy: ggx, attrs }) => [avgPool2d(ggx, attrs)],
};
