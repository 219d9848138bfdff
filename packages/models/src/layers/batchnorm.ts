/**
 * @file BatchNorm2d: differentiable affine parameters { weight, bias } in the parameter tree; running statistics
 * in a separate state object that training mode updates in place (never part of any graph).
 */
import { add, addScalar, mean, mul, reshape, rsqrt, square, sub } from '@metagrad/autograd';
import * as raw from '@metagrad/tensor/raw';
import { checkBoolean, checkOptions, type Device, InvalidArgumentError, ShapeError, type Tensor, keep, tidy } from '@metagrad/tensor';
import { checkPositiveInt, constantParam } from './init';

export type BatchNormParams = { readonly weight: Tensor; readonly bias: Tensor };

/** Running statistics (torch's buffers running_mean / running_var / num_batches_tracked). */
export interface BatchNormState {
  runningMean: Tensor;
  runningVar: Tensor;
  batchesTracked: number;
}

export interface BatchNormOptions {
  eps?: number;
  /** Weight of the new batch in the running averages (torch's momentum). */
  momentum?: number;
}

/** γ = 1, β = 0 (torch's reset_parameters). */
export function initBatchNorm(channels: number, device?: Device): BatchNormParams {
  checkPositiveInt('BatchNorm channels', channels);
  return { weight: constantParam([channels], 1, device), bias: constantParam([channels], 0, device) };
}

/** Running mean 0, running variance 1. */
export function initBatchNormState(channels: number, device?: Device): BatchNormState {
  checkPositiveInt('BatchNorm channels', channels);
  return {
    runningMean: constantParam([channels], 0, device),
    runningVar: constantParam([channels], 1, device),
    batchesTracked: 0,
  };
}

export function disposeBatchNormState(state: BatchNormState): void {
  state.runningMean.dispose();
  state.runningVar.dispose();
}

/**
 * x [N, C, H, W]. Training mode (or no running statistics given) normalises with the batch statistics (biased
 * variance), and, when `state` is given in training mode, folds them into the running averages with the
 * unbiased variance, as torch does. Eval mode normalises with the running statistics.
 */
export function batchNorm2d(params: BatchNormParams, x: Tensor, training: boolean, state?: BatchNormState, opts: BatchNormOptions = {}): Tensor {
  checkOptions('batchNorm2d', opts, ['eps', 'momentum']);
  checkBoolean('batchNorm2d', 'training', training); // 'false' would be read as training mode
  const eps = opts.eps ?? 1e-5;
  const momentum = opts.momentum ?? 0.1;
  const C = params.weight.shape[0];
  if (x.rank !== 4 || x.shape[1] !== C) throw new ShapeError(`batchNorm2d: input [${x.shape.join(', ')}] does not have ${C} channels in dim 1`);
  if (!(eps >= 0 && Number.isFinite(eps))) throw new InvalidArgumentError(`batchNorm2d: eps must be a finite number >= 0, got ${eps}`);
  if (!(momentum >= 0 && momentum <= 1)) throw new InvalidArgumentError(`batchNorm2d: momentum must be in [0, 1], got ${momentum}`);
  if (!training && !state) throw new InvalidArgumentError('batchNorm2d: eval mode needs the running statistics (pass ctx.state)');
  const perChannel = (t: Tensor) => reshape(t, [1, C, 1, 1]);
  return tidy(() => {
    let centred: Tensor;
    let variance: Tensor;
    if (training) {
      const mu = mean(x, [0, 2, 3], true);
      centred = sub(x, mu);
      variance = mean(square(centred), [0, 2, 3], true);
      if (state) updateRunning(state, mu, variance, x.size / C, momentum);
    } else {
      centred = sub(x, perChannel(state!.runningMean));
      variance = perChannel(state!.runningVar);
    }
    const normalised = mul(centred, rsqrt(addScalar(variance, eps)));
    return add(mul(normalised, perChannel(params.weight)), perChannel(params.bias));
  });
}

/** running ← (1 − m)·running + m·batch, with the unbiased variance (n / (n − 1)); raw ops, outside any graph. */
function updateRunning(state: BatchNormState, mu: Tensor, variance: Tensor, count: number, momentum: number): void {
  const C = state.runningMean.shape[0];
  const correction = count > 1 ? count / (count - 1) : 1;
  const blend = (old: Tensor, batch: Tensor, scale: number) =>
    keep(raw.add(raw.mulScalar(old, 1 - momentum), raw.mulScalar(raw.reshape(batch, [C]), momentum * scale)));
  const mean = blend(state.runningMean, mu, 1);
  const runVar = blend(state.runningVar, variance, correction);
  state.runningMean.dispose();
  state.runningVar.dispose();
  state.runningMean = mean;
  state.runningVar = runVar;
  state.batchesTracked += 1;
}
