/** @file Conv2d layer (NCHW, torch layout weight [O, C/g, kH, kW]) with torch's default initialisation. */
import { add, conv2d as conv2dOp, reshape } from '@metagrad/autograd';
import { checkOptions, type Device, InvalidArgumentError, ShapeError, type Tensor, tidy } from '@metagrad/tensor';
import { checkPositiveInt, defaultBound, type SeedLike, toRng, uniformParam } from './init';

/** torch.nn.Conv2d's parameters; `bias` is absent when the layer has none. */
export type Conv2dParams = { readonly weight: Tensor; readonly bias: Tensor } | { readonly weight: Tensor };

export interface Conv2dLayerOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  groups?: number;
}

export interface Conv2dInitOptions {
  groups?: number;
  bias?: boolean;
  device?: Device;
}

/** torch.nn.Conv2d's init: weight and bias U(−1/√fan_in, 1/√fan_in), fan_in = C/g·k·k. */
export function initConv2d(seed: SeedLike, inChannels: number, outChannels: number, kernel: number, opts: Conv2dInitOptions = {}): Conv2dParams {
  checkOptions('initConv2d', opts, ['groups', 'bias', 'device']);
  const groups = opts.groups ?? 1;
  checkPositiveInt('Conv2d inChannels', inChannels);
  checkPositiveInt('Conv2d outChannels', outChannels);
  checkPositiveInt('Conv2d kernel', kernel);
  checkPositiveInt('Conv2d groups', groups);
  if (inChannels % groups !== 0 || outChannels % groups !== 0) {
    throw new InvalidArgumentError(`Conv2d: groups=${groups} must divide inChannels=${inChannels} and outChannels=${outChannels}`);
  }
  const rng = toRng(seed);
  const fanIn = (inChannels / groups) * kernel * kernel;
  const bound = defaultBound(fanIn);
  const weight = uniformParam(rng, [outChannels, inChannels / groups, kernel, kernel], bound, opts.device);
  if (opts.bias === false) return { weight };
  return { weight, bias: uniformParam(rng, [outChannels], bound, opts.device) };
}

/** x [N, C, H, W] → [N, O, Ho, Wo], plus a per-channel bias. */
export function conv2dLayer(params: Conv2dParams, x: Tensor, opts: Conv2dLayerOptions = {}): Tensor {
  // The layer builds its own options for the op, so a typo ({ strides: 2 }) must be caught here.
  checkOptions('conv2dLayer', opts, ['stride', 'padding', 'dilation', 'groups']);
  const weight = params.weight;
  const bias = 'bias' in params ? params.bias : undefined;
  const groups = opts.groups ?? 1;
  if (x.rank !== 4 || x.shape[1] !== weight.shape[1] * groups) {
    throw new ShapeError(`conv2d: input [${x.shape.join(', ')}] does not fit weight [${weight.shape.join(', ')}] with groups=${groups}`);
  }
  return tidy(() => {
    const y = conv2dOp(x, weight, {
      stride: opts.stride ?? 1,
      padding: opts.padding ?? 0,
      dilation: opts.dilation ?? 1,
      groups,
    });
    return bias ? add(y, reshape(bias, [1, bias.shape[0], 1, 1])) : y;
  });
}
