/** @file Meta-Weight-Net (Shu et al. 2019): per-example loss [N, 1] → example weight [N, 1] via 1→h→1, ReLU, sigmoid. */
import { addScalar, mulScalar, relu, sigmoid } from '@metagrad/autograd';
import { InvalidArgumentError, ShapeError, tidy } from '@metagrad/tensor';
import { Rng } from '../data/random';
import { checkPositiveInt } from '../layers/init';
import { type LinearParams, initLinear, linear } from '../layers/linear';
import type { Model } from './model';

export type MetaWeightNetParams = { readonly fc1: LinearParams; readonly fc2: LinearParams };

export interface MetaWeightNetOptions {
  hidden?: number;
  /** Minimum weight: the output is floor + (1 − floor)·σ(z) ∈ [floor, 1), so no example is switched off entirely. */
  floor?: number;
}

export function metaWeightNet(options: MetaWeightNetOptions = {}): Model<MetaWeightNetParams> {
  const hidden = options.hidden ?? 100;
  const floor = options.floor ?? 0;
  checkPositiveInt('metaWeightNet hidden', hidden);
  if (!(floor >= 0 && floor < 1)) throw new InvalidArgumentError(`metaWeightNet: floor must be in [0, 1), got ${floor}`);
  return {
    init(seed, device) {
      const rng = new Rng(seed);
      return { fc1: initLinear(rng, 1, hidden, { device }), fc2: initLinear(rng, hidden, 1, { device }) };
    },
    apply(params, x) {
      if (x.rank !== 2 || x.shape[1] !== 1) throw new ShapeError(`metaWeightNet: input must be losses [N, 1], got [${x.shape.join(', ')}]`);
      return tidy(() => {
        const w = sigmoid(linear(params.fc2, relu(linear(params.fc1, x))));
        return floor === 0 ? w : addScalar(mulScalar(w, 1 - floor), floor);
      });
    },
  };
}
