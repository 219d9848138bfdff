/** @file Multi-layer perceptron over a list of Linear layers (tree paths `0.weight`, `0.bias`, `1.weight`, …). */
import { InvalidArgumentError, type Tensor, tidy } from '@metagrad/tensor';
import { Rng } from '../data/random';
import { type ActivationName, activation } from '../layers/activations';
import { checkPositiveInt } from '../layers/init';
import { type LinearParams, initLinear, linear } from '../layers/linear';
import type { Model } from './model';

export type MlpParams = LinearParams[];

export interface MlpOptions {
  /** Layer widths including input and output, e.g. [784, 256, 10]. */
  sizes: readonly number[];
  /** Between hidden layers. */
  activation: Exclude<ActivationName, 'identity'>;
  /** After the last layer (default: none, i.e. logits). */
  outputActivation?: ActivationName;
  bias?: boolean;
}

export function mlp(options: MlpOptions): Model<MlpParams> {
  const { sizes } = options;
  if (sizes.length < 2) throw new InvalidArgumentError(`mlp: sizes needs input and output widths, got [${sizes.join(', ')}]`);
  sizes.forEach((s, i) => checkPositiveInt(`mlp sizes[${i}]`, s));
  const hidden = activation(options.activation);
  const output = activation(options.outputActivation ?? 'identity');
  return {
    init(seed, device) {
      const rng = new Rng(seed);
      return sizes.slice(1).map((out, i) => initLinear(rng, sizes[i], out, { device, bias: options.bias }));
    },
    apply(params, x) {
      if (params.length !== sizes.length - 1) {
        throw new InvalidArgumentError(`mlp: expected ${sizes.length - 1} layers of parameters, got ${params.length}`);
      }
      return tidy(() => {
        let h: Tensor = x;
        params.forEach((layer, i) => {
          h = linear(layer, h);
          h = i < params.length - 1 ? hidden(h) : output(h);
        });
        return h;
      });
    },
  };
}
