/** @file Seeded parameter initialisation on the host (reproducible on every adapter), PyTorch's defaults. */
import { type Device, InvalidArgumentError, type Shape, type Tensor, tensor } from '@metagrad/tensor';
import { Rng } from '../data/random';

/** A seed or a generator already in use (so one model's layers draw from one stream). */
export type SeedLike = number | Rng;

export const toRng = (seed: SeedLike): Rng => (typeof seed === 'number' ? new Rng(seed) : seed);

/** U(−bound, bound) of `shape`. */
export function uniformParam(rng: Rng, shape: Shape, bound: number, device?: Device): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(rng.uniformArray(n, -bound, bound), shape, 'f32', device);
}

/**
 * The bound of torch's default Linear/Conv weight init, kaiming_uniform_(a=√5): gain·√(3/fan_in) with
 * gain = √(2/(1+a²)) = √(1/3), i.e. 1/√fan_in — the same bound torch uses for the bias.
 */
export function defaultBound(fanIn: number): number {
  if (!(Number.isInteger(fanIn) && fanIn > 0)) throw new InvalidArgumentError(`fan_in must be a positive integer, got ${fanIn}`);
  return 1 / Math.sqrt(fanIn);
}

export function constantParam(shape: Shape, value: number, device?: Device): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(new Float32Array(n).fill(value), shape, 'f32', device);
}

export function checkPositiveInt(what: string, value: number): void {
  if (!(Number.isInteger(value) && value > 0)) throw new InvalidArgumentError(`${what} must be a positive integer, got ${value}`);
}
