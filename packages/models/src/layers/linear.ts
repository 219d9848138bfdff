/** @file Linear layer: y = x·Wᵀ + b with torch's layout (weight [out, in]) and default initialisation. */
import { add, matmul } from '@metagrad/autograd';
import { checkOptions, type Device, ShapeError, type Tensor } from '@metagrad/tensor';
import { checkPositiveInt, defaultBound, type SeedLike, toRng, uniformParam } from './init';

/** torch.nn.Linear's parameters; `bias` is absent when the layer has none. */
export type LinearParams = { readonly weight: Tensor; readonly bias: Tensor } | { readonly weight: Tensor };

export interface LinearOptions {
  bias?: boolean;
  device?: Device;
}

/** torch.nn.Linear's init: weight and bias both U(−1/√in, 1/√in). */
export function initLinear(seed: SeedLike, inFeatures: number, outFeatures: number, opts: LinearOptions = {}): LinearParams {
  checkOptions('initLinear', opts, ['bias', 'device']);
  checkPositiveInt('Linear inFeatures', inFeatures);
  checkPositiveInt('Linear outFeatures', outFeatures);
  const rng = toRng(seed);
  const bound = defaultBound(inFeatures);
  const weight = uniformParam(rng, [outFeatures, inFeatures], bound, opts.device);
  if (opts.bias === false) return { weight };
  return { weight, bias: uniformParam(rng, [outFeatures], bound, opts.device) };
}

/** x [N, in] → [N, out]. */
export function linear(params: LinearParams, x: Tensor): Tensor {
  const weight = params.weight;
  const bias = 'bias' in params ? params.bias : undefined;
  if (x.rank !== 2 || x.shape[1] !== weight.shape[1]) {
    throw new ShapeError(`linear: input [${x.shape.join(', ')}] does not fit weight [${weight.shape.join(', ')}] (need [N, ${weight.shape[1]}])`);
  }
  const y = matmul(x, weight, { transB: true });
  if (!bias) return y;
  const out = add(y, bias);
  y.dispose();
  return out;
}
