/**
 * @file Conv4, the MAML/ANIL backbone: 4 × [conv3×3 (pad 1) → BatchNorm → ReLU → max-pool 2] → flatten → linear.
 * MAML runs batch norm in training mode on every batch (transductive, no running statistics): apply with
 * `{ training: true }` and no state. Pass `state` (from `initState`) to keep torch-style running averages as well.
 */
import { relu } from '@metagrad/autograd';
import { type Device, InvalidArgumentError, ShapeError, tidy } from '@metagrad/tensor';
import { Rng } from '../data/random';
import { type BatchNormParams, type BatchNormState, batchNorm2d, initBatchNorm, initBatchNormState } from '../layers/batchnorm';
import { type Conv2dParams, conv2dLayer, initConv2d } from '../layers/conv';
import { checkPositiveInt } from '../layers/init';
import { type LinearParams, initLinear, linear } from '../layers/linear';
import { flatten, maxPool2dLayer } from '../layers/pool';
import type { StatefulModel } from './model';

export type Conv4Block = { readonly conv: Conv2dParams; readonly bn: BatchNormParams };
export type Conv4Params = { readonly blocks: readonly Conv4Block[]; readonly head: LinearParams };

export interface Conv4Options {
  /** 1 for Omniglot, 3 for miniImageNet. */
  inChannels?: number;
  /** Filters per block: 64 in MAML's Omniglot net, 32 in its miniImageNet net. */
  hidden?: number;
  /** Ways of the task. */
  classes?: number;
  /** Square input side (28 Omniglot, 84 miniImageNet). */
  imageSize?: number;
}

const BLOCKS = 4;

export function conv4(options: Conv4Options = {}): StatefulModel<Conv4Params, BatchNormState[]> {
  const inChannels = options.inChannels ?? 3;
  const hidden = options.hidden ?? 64;
  const classes = options.classes ?? 5;
  const size = options.imageSize ?? 84;
  checkPositiveInt('conv4 inChannels', inChannels);
  checkPositiveInt('conv4 hidden', hidden);
  checkPositiveInt('conv4 classes', classes);
  checkPositiveInt('conv4 imageSize', size);
  const side = Math.floor(size / 2 ** BLOCKS);
  if (side < 1) throw new InvalidArgumentError(`conv4: imageSize ${size} is too small for 4 poolings (need at least 16)`);
  return {
    init(seed, device) {
      const rng = new Rng(seed);
      const blocks = Array.from({ length: BLOCKS }, (_, i) => ({
        conv: initConv2d(rng, i === 0 ? inChannels : hidden, hidden, 3, { device }),
        bn: initBatchNorm(hidden, device),
      }));
      return { blocks, head: initLinear(rng, hidden * side * side, classes, { device }) };
    },
    initState(device?: Device) {
      return Array.from({ length: BLOCKS }, () => initBatchNormState(hidden, device));
    },
    apply(params, x, ctx = {}) {
      if (x.rank !== 4 || x.shape[1] !== inChannels || x.shape[2] !== size || x.shape[3] !== size) {
        throw new ShapeError(`conv4: input must be [N, ${inChannels}, ${size}, ${size}], got [${x.shape.join(', ')}]`);
      }
      const training = ctx.training ?? false;
      return tidy(() => {
        let h = x;
        params.blocks.forEach((block, i) => {
          const normed = batchNorm2d(block.bn, conv2dLayer(block.conv, h, { padding: 1 }), training, ctx.state?.[i]);
          h = maxPool2dLayer(relu(normed), 2);
        });
        return linear(params.head, flatten(h));
      });
    },
  };
}
