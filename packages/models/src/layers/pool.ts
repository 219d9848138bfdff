/** @file Pooling and reshaping layers (no parameters): thin named wrappers over the differentiable ops. */
import { avgPool2d as avgPoolOp, maxPool2d as maxPoolOp, mean, reshape } from '@metagrad/autograd';
import { checkOptions, ShapeError, type Tensor } from '@metagrad/tensor';

export interface PoolOptions {
  stride?: number;
  padding?: number;
}

/** torch.nn.MaxPool2d(kernel, stride = kernel, padding). */
export function maxPool2dLayer(x: Tensor, kernel: number, opts: PoolOptions = {}): Tensor {
  checkOptions('maxPool2dLayer', opts, ['stride', 'padding']);
  return maxPoolOp(x, { kernel, stride: opts.stride ?? kernel, padding: opts.padding ?? 0 });
}

/** torch.nn.AvgPool2d(kernel, stride = kernel, padding) with count_include_pad = true. */
export function avgPool2dLayer(x: Tensor, kernel: number, opts: PoolOptions = {}): Tensor {
  checkOptions('avgPool2dLayer', opts, ['stride', 'padding']);
  return avgPoolOp(x, { kernel, stride: opts.stride ?? kernel, padding: opts.padding ?? 0 });
}

/** [N, C, H, W] → [N, C] (torch.nn.AdaptiveAvgPool2d(1) + flatten). */
export function globalAvgPool(x: Tensor): Tensor {
  if (x.rank !== 4) throw new ShapeError(`globalAvgPool: need [N, C, H, W], got [${x.shape.join(', ')}]`);
  return mean(x, [2, 3]);
}

/** [N, ...] → [N, prod(...)] (torch.flatten(x, 1)). */
export function flatten(x: Tensor): Tensor {
  if (x.rank < 1) throw new ShapeError('flatten: need at least a batch dimension, got a scalar');
  const rest = x.shape.slice(1).reduce((a, b) => a * b, 1);
  return reshape(x, [x.shape[0], rest]);
}
