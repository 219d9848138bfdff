/**
 * @file FeatureWiseTransform (LFT, Tseng et al. 2020): in training, scales and shifts each channel by sampled
 * γ = 1 + ε₁·softplus(θ_γ) and β = ε₂·softplus(θ_β), ε ~ N(0, 1) per channel (shared over the batch and
 * positions); the learned hyperparameters are θ_γ, θ_β (init 0.3 and 0.5 as in the authors' code). Eval: identity.
 */
import { add, addScalar, mul, reshape } from '@metagrad/autograd';
import * as raw from '@metagrad/tensor/raw';
import { InvalidArgumentError, ShapeError, type Tensor, tidy } from '@metagrad/tensor';
import { softplus } from '../layers/activations';
import { checkPositiveInt, constantParam } from '../layers/init';
import type { Model } from './model';

/** Pre-softplus noise scales, one per channel. */
export type FeatureWiseParams = { readonly gamma: Tensor; readonly beta: Tensor };

export interface FeatureWiseTransformOptions {
  channels: number;
  gammaInit?: number;
  betaInit?: number;
}

/** γ ⊙ x + β for given standard-normal noise [C] (the deterministic core, so it can be tested against torch). */
export function featureWiseAffine(params: FeatureWiseParams, x: Tensor, noiseGamma: Tensor, noiseBeta: Tensor): Tensor {
  const C = params.gamma.shape[0];
  if (x.rank !== 4 || x.shape[1] !== C) throw new ShapeError(`featureWiseTransform: input [${x.shape.join(', ')}] does not have ${C} channels in dim 1`);
  return tidy(() => {
    const perChannel = (t: Tensor) => reshape(t, [1, C, 1, 1]);
    const gamma = addScalar(mul(perChannel(noiseGamma), perChannel(softplus(params.gamma))), 1);
    const beta = mul(perChannel(noiseBeta), perChannel(softplus(params.beta)));
    return add(mul(x, gamma), beta);
  });
}

export function featureWiseTransform(options: FeatureWiseTransformOptions): Model<FeatureWiseParams> {
  const { channels } = options;
  checkPositiveInt('featureWiseTransform channels', channels);
  const gammaInit = options.gammaInit ?? 0.3;
  const betaInit = options.betaInit ?? 0.5;
  return {
    init(_seed, device) {
      return { gamma: constantParam([channels], gammaInit, device), beta: constantParam([channels], betaInit, device) };
    },
    apply(params, x, ctx = {}) {
      if (!ctx.training) return reshape(x, x.shape);
      if (ctx.seed === undefined) throw new InvalidArgumentError('featureWiseTransform in training mode needs ctx.seed to sample γ and β');
      const seed = ctx.seed;
      return tidy(() => {
        const noise = raw.normal([2, channels], seed, { device: x.device });
        const [ng, nb] = [0, 1].map((r) => raw.reshape(raw.slice(noise, [r, 0], [r + 1, channels]), [channels]));
        return featureWiseAffine(params, x, ng, nb);
      });
    },
  };
}
