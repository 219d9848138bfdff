/**
 * @file ResNet for CIFAR-size inputs (He et al. 2016, §4.2): conv3×3 → 3 stages of n basic blocks (widths 16, 32,
 * 64 × width multiplier; stride 2 entering stages 2 and 3) → global average pool → linear; depth = 6n + 2.
 * Shortcuts where the shape changes are option A (stride-2 subsampling, zero-padded channels: no parameters).
 * Batch norm running statistics live in the state: `initState()` gives one entry per BN layer in forward order.
 */
import { add, pad, relu, slice } from '@metagrad/autograd';
import { type Device, InvalidArgumentError, ShapeError, type Tensor, tidy } from '@metagrad/tensor';
import { Rng } from '../data/random';
import { type BatchNormParams, type BatchNormState, batchNorm2d, initBatchNorm, initBatchNormState } from '../layers/batchnorm';
import { type Conv2dParams, conv2dLayer, initConv2d } from '../layers/conv';
import { checkPositiveInt } from '../layers/init';
import { type LinearParams, initLinear, linear } from '../layers/linear';
import { globalAvgPool } from '../layers/pool';
import type { StatefulModel } from './model';

export type ResNetBlock = {
  readonly conv1: Conv2dParams;
  readonly bn1: BatchNormParams;
  readonly conv2: Conv2dParams;
  readonly bn2: BatchNormParams;
};
export type ResNetParams = {
  readonly conv1: Conv2dParams;
  readonly bn1: BatchNormParams;
  readonly blocks: readonly ResNetBlock[];
  readonly fc: LinearParams;
};

export interface ResNetCifarOptions {
  /** 6n + 2: 20, 32, 44, 56, 110 (8 for tests). */
  depth?: number;
  /** Multiplies the stage widths 16/32/64 (rounded). */
  width?: number;
  classes?: number;
  inChannels?: number;
}

interface BlockPlan {
  inC: number;
  outC: number;
  stride: number;
}

export function resnetCifar(options: ResNetCifarOptions = {}): StatefulModel<ResNetParams, BatchNormState[]> {
  const depth = options.depth ?? 20;
  const width = options.width ?? 1;
  const classes = options.classes ?? 10;
  const inChannels = options.inChannels ?? 3;
  if (!(Number.isInteger(depth) && depth >= 8 && (depth - 2) % 6 === 0)) {
    throw new InvalidArgumentError(`resnetCifar: depth must be 6n + 2 with n ≥ 1 (20, 32, …), got ${depth}`);
  }
  const widths = [16, 32, 64].map((w) => Math.round(w * width));
  if (!(width > 0) || widths[0] < 1) throw new InvalidArgumentError(`resnetCifar: width ${width} leaves no channels`);
  checkPositiveInt('resnetCifar classes', classes);
  checkPositiveInt('resnetCifar inChannels', inChannels);
  const n = (depth - 2) / 6;
  const plan: BlockPlan[] = [];
  let inC = widths[0];
  widths.forEach((outC, stage) => {
    for (let b = 0; b < n; b++) {
      plan.push({ inC, outC, stride: stage > 0 && b === 0 ? 2 : 1 });
      inC = outC;
    }
  });
  const bnChannels = [widths[0], ...plan.flatMap((p) => [p.outC, p.outC])];
  return {
    init(seed, device) {
      const rng = new Rng(seed);
      const conv = (i: number, o: number) => initConv2d(rng, i, o, 3, { bias: false, device });
      return {
        conv1: conv(inChannels, widths[0]),
        bn1: initBatchNorm(widths[0], device),
        blocks: plan.map((p) => ({
          conv1: conv(p.inC, p.outC),
          bn1: initBatchNorm(p.outC, device),
          conv2: conv(p.outC, p.outC),
          bn2: initBatchNorm(p.outC, device),
        })),
        fc: initLinear(rng, widths[2], classes, { device }),
      };
    },
    initState(device?: Device) {
      return bnChannels.map((c) => initBatchNormState(c, device));
    },
    apply(params, x, ctx = {}) {
      if (x.rank !== 4 || x.shape[1] !== inChannels) {
        throw new ShapeError(`resnetCifar: input must be [N, ${inChannels}, H, W], got [${x.shape.join(', ')}]`);
      }
      if (params.blocks.length !== plan.length) {
        throw new InvalidArgumentError(`resnetCifar: depth ${depth} needs ${plan.length} blocks of parameters, got ${params.blocks.length}`);
      }
      const training = ctx.training ?? false;
      let bnIndex = 0;
      const bn = (p: BatchNormParams, h: Tensor) => batchNorm2d(p, h, training, ctx.state?.[bnIndex++]);
      return tidy(() => {
        let h = relu(bn(params.bn1, conv2dLayer(params.conv1, x, { padding: 1 })));
        params.blocks.forEach((block, i) => {
          const { inC, outC, stride } = plan[i];
          const branch = relu(bn(block.bn1, conv2dLayer(block.conv1, h, { stride, padding: 1 })));
          const residual = bn(block.bn2, conv2dLayer(block.conv2, branch, { padding: 1 }));
          h = relu(add(residual, stride !== 1 || inC !== outC ? shortcutA(h, outC) : h));
        });
        return linear(params.fc, globalAvgPool(h));
      });
    },
  };
}

/** Option A: x[:, :, ::2, ::2] with the new channels split as zero padding before and after. */
function shortcutA(x: Tensor, outC: number): Tensor {
  const [N, C, H, W] = x.shape;
  const sub = slice(x, [0, 0, 0, 0], [N, C, H, W], [1, 1, 2, 2]);
  const extra = outC - C;
  const before = Math.floor(extra / 2);
  return pad(sub, [
    [0, 0],
    [before, extra - before],
    [0, 0],
    [0, 0],
  ]);
}
