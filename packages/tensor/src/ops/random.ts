/** @file Raw random ops: counter-based Philox4x32-10 streams (reproducible across adapters) and permutation. */
import {
  bitonicStepKernel,
  linearDispatch,
  permutationIndicesKernel,
  permutationKeysKernel,
  RANDOM_OUTPUT_DTYPE,
  randomKernel,
  type RandomOpName,
} from '@metagrad/kernels-wgsl';
import type { Device } from '../device';
import { InvalidArgumentError } from '../errors';
import { getDefaultDevice } from '../runtime';
import { sizeOf, type Shape, type Tensor } from '../tensor';
import { empty } from './creation';
import { checkDevice, checkNumber, checkOptions, checkShapeArg, describeValue, recordInto, UniformWriter } from './util';

/** A non-negative integer below 2^53 (split into low/high u32 words) or an explicit [lo, hi] pair. */
export type Seed = number | readonly [number, number];

export interface RandomOptions {
  /** Second counter word: one seed, independent streams (e.g. one per training step). */
  offset?: number;
  device?: Device;
}

/**
 * A random stream: a Philox key and a counter of draws. Each draw with it takes the next offset (Philox's second
 * counter word), so successive draws differ, and a compiled step's replay draws exactly what the eager call would
 * have (the offset is read at each replay, not frozen at the trace; PyTorch's graph-safe generator does the same).
 */
export class Generator {
  readonly key: readonly [number, number];
  /** The offset the next draw will use; advanced by one per draw (wraps at 2^32). */
  offset: number;

  constructor(seed: Seed, offset = 0) {
    this.key = seedWords(seed);
    this.offset = offsetOf({ offset });
  }

  /** Takes the offset for one draw and advances the stream. */
  next(): number {
    const o = this.offset;
    this.offset = (o + 1) % 2 ** 32;
    return o;
  }
}

/** Splits a seed into the Philox key (seedLo, seedHi). */
export function seedWords(seed: Seed): [number, number] {
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed) || seed < 0) throw new InvalidArgumentError(`seed must be a non-negative safe integer, got ${seed}`);
    return [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0];
  }
  if (!Array.isArray(seed)) throw new InvalidArgumentError(`seed must be a non-negative safe integer or a pair of u32 words, got ${describeValue(seed)}`);
  if (seed.length !== 2 || !seed.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32)) {
    throw new InvalidArgumentError(`seed pair must be two u32 words, got [${seed.join(', ')}]`);
  }
  return [seed[0], seed[1]];
}

function offsetOf(opts: RandomOptions): number {
  const offset = opts.offset ?? 0;
  if (typeof offset !== 'number') throw new InvalidArgumentError(`offset must be a u32, got ${describeValue(offset)}`);
  if (!Number.isInteger(offset) || offset < 0 || offset >= 2 ** 32) throw new InvalidArgumentError(`offset must be a u32, got ${offset}`);
  return offset;
}

function generate(op: RandomOpName, shape: Shape, seed: Seed | Generator, opts: RandomOptions, a = 0, b = 0, lowBits = 0, range = 0): Tensor {
  checkShapeArg(op, shape);
  checkOptions(op, opts, op === 'uniform' ? ['offset', 'device', 'low', 'high'] : op === 'normal' ? ['offset', 'device', 'mean', 'std'] : ['offset', 'device']);
  const gen = seed instanceof Generator ? seed : null;
  if (gen && opts.offset !== undefined)
    throw new InvalidArgumentError(`${op}: a Generator supplies the offset of each draw; do not pass offset (${describeValue(opts.offset)}) too`);
  const [seedLo, seedHi] = gen ? gen.key : seedWords(seed as Seed);
  const offset = gen ? 0 : offsetOf(opts);
  const device = checkDevice(op, opts.device === undefined ? getDefaultDevice() : opts.device);
  const n = sizeOf(shape);
  if (n > 2 ** 32) throw new InvalidArgumentError(`random tensors are limited to 2^32 elements, got ${n}`);
  const out = empty(shape, RANDOM_OUTPUT_DTYPE[op], device);
  if (n === 0) return out;
  const uniformFor = (at: number) => new UniformWriter().u32(n).u32(at).u32(seedLo).u32(seedHi).f32(a).f32(b).i32(lowBits).u32(range).finish();
  // With a Generator the offset is volatile: taken at the draw, and again at each replay of a compiled step.
  const u = gen ? () => uniformFor(gen.next()) : uniformFor(offset);
  return recordInto(out, () => device.dispatch(randomKernel({ op }), [out.storage.buffer], u, linearDispatch(n)));
}

/** The raw Philox word 0 of each element (u32): what every other random op is derived from. */
export function randomBits(shape: Shape, seed: Seed | Generator, opts: RandomOptions = {}): Tensor {
  return generate('bits', shape, seed, opts ?? {});
}

/** low + (high − low)·u with u = (bits >> 8)·2^-24 ∈ [0, 1). */
export function uniform(shape: Shape, seed: Seed | Generator, options: RandomOptions & { low?: number; high?: number } = {}): Tensor {
  checkOptions('uniform', options, ['offset', 'device', 'low', 'high']);
  const opts = options ?? {};
  const [lo, hi] = [checkNumber('uniform', 'low', opts.low ?? 0), checkNumber('uniform', 'high', opts.high ?? 1)];
  // torch's uniform_ requires from <= to; infinite or NaN bounds would give NaN or ±inf samples silently.
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo <= hi)) throw new InvalidArgumentError(`uniform: need finite low <= high, got low=${lo} high=${hi}`);
  const low = Math.fround(lo);
  const span = Math.fround(Math.fround(hi) - low);
  return generate('uniform', shape, seed, opts, low, span);
}

/** Box–Muller from words 0 and 1 of each element's counter. */
export function normal(shape: Shape, seed: Seed | Generator, options: RandomOptions & { mean?: number; std?: number } = {}): Tensor {
  checkOptions('normal', options, ['offset', 'device', 'mean', 'std']);
  const opts = options ?? {};
  const [mean, std] = [checkNumber('normal', 'mean', opts.mean ?? 0), checkNumber('normal', 'std', opts.std ?? 1)];
  // As torch.normal: std >= 0 (a negative or NaN std would flip or poison every sample silently).
  if (!(Number.isFinite(mean) && Number.isFinite(std) && std >= 0))
    throw new InvalidArgumentError(`normal: need a finite mean and std >= 0, got mean=${mean} std=${std}`);
  return generate('normal', shape, seed, opts, mean, std);
}

/** ±1 (f32) from the low bit of word 0. */
export function rademacher(shape: Shape, seed: Seed | Generator, opts: RandomOptions = {}): Tensor {
  return generate('rademacher', shape, seed, opts ?? {});
}

/** 1 where u < p, else 0 (f32). */
export function bernoulli(shape: Shape, seed: Seed | Generator, p: number, opts: RandomOptions = {}): Tensor {
  if (!(typeof p === 'number' && p >= 0 && p <= 1)) throw new InvalidArgumentError(`bernoulli: p must be in [0, 1], got ${describeValue(p)}`);
  return generate('bernoulli', shape, seed, opts ?? {}, p);
}

/** low + (word0 mod (high − low)) as i32 (the plain modulo's small bias is part of the contract). */
export function randint(shape: Shape, seed: Seed | Generator, low: number, high: number, opts: RandomOptions = {}): Tensor {
  const i32ok = (v: number) => Number.isInteger(v) && v >= -(2 ** 31) && v <= 2 ** 31 - 1;
  if (!i32ok(low) || !i32ok(high) || high <= low) {
    throw new InvalidArgumentError(`randint: need i32 bounds with low < high, got low=${low} high=${high}`);
  }
  return generate('randint', shape, seed, opts ?? {}, 0, 0, low, high - low);
}

/**
 * A permutation of 0..n−1 (i32): the stable argsort of the word-0 keys, by a bitonic sort of (key, index) pairs
 * padded to a power of two. log2(L)·(log2(L)+1)/2 dispatches, all recorded in one batch.
 */
export function permutation(n: number, seed: Seed, options: RandomOptions = {}): Tensor {
  checkOptions('permutation', options, ['offset', 'device']);
  const opts = options ?? {};
  checkShapeArg('permutation', [n], 'length');
  const [seedLo, seedHi] = seedWords(seed);
  const offset = offsetOf(opts);
  const device = checkDevice('permutation', opts.device === undefined ? getDefaultDevice() : opts.device);
  const out = empty([n], 'i32', device);
  if (n === 0) return out;
  const length = 2 ** Math.ceil(Math.log2(n));
  return recordInto(out, () => {
    const pairs = empty([2 * length], 'u32', device);
    const buf = pairs.storage.buffer;
    try {
      device.dispatch(
        permutationKeysKernel(),
        [buf],
        new UniformWriter().u32(n).u32(offset).u32(seedLo).u32(seedHi).u32(length).finish(),
        linearDispatch(length),
      );
      const step = bitonicStepKernel();
      for (let k = 2; k <= length; k *= 2) {
        for (let j = k / 2; j >= 1; j /= 2) {
          device.dispatch(
            step,
            [buf],
            new UniformWriter()
              .u32(j)
              .u32(k)
              .u32(length / 2)
              .finish(),
            linearDispatch(length / 2),
          );
        }
      }
      device.dispatch(permutationIndicesKernel(), [buf, out.storage.buffer], new UniformWriter().u32(n).finish(), linearDispatch(n));
    } finally {
      pairs.dispose();
    }
  });
}
