/** @file Seeded (inverted) dropout: the mask comes from the Philox stream, so a seed reproduces it exactly. */
import { mul, mulScalar, reshape } from '@metagrad/autograd';
import * as raw from '@metagrad/tensor';
import { InvalidArgumentError, type Tensor, tidy } from '@metagrad/tensor';

/**
 * Training: zeroes each element with probability p and scales the rest by 1/(1 − p) (torch's dropout); the
 * mask is a constant (bernoulli with keep probability 1 − p from `seed`, `offset`). Eval: the identity.
 */
export function dropout(x: Tensor, p: number, training: boolean, seed?: number, offset = 0): Tensor {
  if (!(p >= 0 && p <= 1)) throw new InvalidArgumentError(`dropout: p must be in [0, 1], got ${p}`);
  raw.checkBoolean('dropout', 'training', training); // 'false' would be read as training mode
  if (!training || p === 0) return reshape(x, x.shape);
  if (seed === undefined) throw new InvalidArgumentError(`dropout(p=${p}) in training mode needs a seed (ctx.seed)`);
  if (p === 1) return mulScalar(x, 0);
  return tidy(() => mulScalar(mul(x, raw.bernoulli(x.shape, seed, 1 - p, { offset, device: x.device })), 1 / (1 - p)));
}
