/** @file Activations by name, plus softplus (torch's threshold form) built from differentiable primitives. */
import { add, addScalar, exp, log1p, minimum, relu, reshape, sigmoid, tanh } from '@metagrad/autograd';
import { InvalidArgumentError, type Tensor, full, tidy } from '@metagrad/tensor';

export type ActivationName = 'relu' | 'tanh' | 'sigmoid' | 'softplus' | 'identity';

/** torch's softplus threshold: above it the function is x itself (and exp would overflow soon after). */
const SOFTPLUS_THRESHOLD = 20;

/**
 * log(1 + eˣ) as log1p(exp(min(x, 20))) + relu(x − 20): exact derivative σ(x) below the threshold and 1 above,
 * with no exp overflow in either branch (a where() would give 0·∞ = NaN gradients there).
 */
export function softplus(x: Tensor): Tensor {
  return tidy(() => {
    const limit = full([], SOFTPLUS_THRESHOLD, 'f32', x.device);
    return add(log1p(exp(minimum(x, limit))), relu(addScalar(x, -SOFTPLUS_THRESHOLD)));
  });
}

const ACTIVATIONS: Record<ActivationName, (x: Tensor) => Tensor> = {
  relu,
  tanh,
  sigmoid,
  softplus,
  // A new (differentiable) handle, so callers may dispose the result without touching the input.
  identity: (x) => reshape(x, x.shape),
};

export function activation(name: ActivationName): (x: Tensor) => Tensor {
  const fn = ACTIVATIONS[name];
  if (!fn) throw new InvalidArgumentError(`unknown activation '${String(name)}' (expected one of ${Object.keys(ACTIVATIONS).join(', ')})`);
  return fn;
}
