/**
 * @file LeNet-5 (ReLU, max-pool variant): conv5×5(6, pad 2) → pool → conv5×5(16) → pool → 120 → 84 → classes.
 * The padding keeps 28×28 inputs at 28 before the first pool (16·5·5 features); 14×14 inputs give 16·1·1.
 */
import { relu } from '@metagrad/autograd';
import { InvalidArgumentError, ShapeError, tidy } from '@metagrad/tensor';
import { Rng } from '../data/random';
import { type Conv2dParams, conv2dLayer, initConv2d } from '../layers/conv';
import { checkPositiveInt } from '../layers/init';
import { type LinearParams, initLinear, linear } from '../layers/linear';
import { flatten, maxPool2dLayer } from '../layers/pool';
import type { Model } from './model';

export type LeNet5Params = {
  readonly conv1: Conv2dParams;
  readonly conv2: Conv2dParams;
  readonly fc1: LinearParams;
  readonly fc2: LinearParams;
  readonly fc3: LinearParams;
};

export interface LeNet5Options {
  inChannels?: number;
  classes?: number;
  /** Square input side (28 for Fashion-MNIST, 14 after downsampling). */
  imageSize?: number;
}

export function lenet5(options: LeNet5Options = {}): Model<LeNet5Params> {
  const inChannels = options.inChannels ?? 1;
  const classes = options.classes ?? 10;
  const size = options.imageSize ?? 28;
  checkPositiveInt('lenet5 inChannels', inChannels);
  checkPositiveInt('lenet5 classes', classes);
  checkPositiveInt('lenet5 imageSize', size);
  const side = Math.floor((Math.floor(size / 2) - 4) / 2);
  if (side < 1) throw new InvalidArgumentError(`lenet5: imageSize ${size} is too small (need at least 12)`);
  const features = 16 * side * side;
  return {
    init(seed, device) {
      const rng = new Rng(seed);
      return {
        conv1: initConv2d(rng, inChannels, 6, 5, { device }),
        conv2: initConv2d(rng, 6, 16, 5, { device }),
        fc1: initLinear(rng, features, 120, { device }),
        fc2: initLinear(rng, 120, 84, { device }),
        fc3: initLinear(rng, 84, classes, { device }),
      };
    },
    apply(params, x) {
      if (x.rank !== 4 || x.shape[1] !== inChannels || x.shape[2] !== size || x.shape[3] !== size) {
        throw new ShapeError(`lenet5: input must be [N, ${inChannels}, ${size}, ${size}], got [${x.shape.join(', ')}]`);
      }
      return tidy(() => {
        let h = maxPool2dLayer(relu(conv2dLayer(params.conv1, x, { padding: 2 })), 2);
        h = maxPool2dLayer(relu(conv2dLayer(params.conv2, h)), 2);
        h = relu(linear(params.fc1, flatten(h)));
        h = relu(linear(params.fc2, h));
        return linear(params.fc3, h);
      });
    },
  };
}
