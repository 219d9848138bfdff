/**
 * @file A small seeded host PRNG (xoshiro128** seeded through splitmix32) for data pipelines: shuffles,
 * task parameters, label noise. Host-side only, so data is reproducible from a seed whatever the GPU does.
 */

const TWO_POW_32 = 4294967296;
const TWO_POW_53 = 9007199254740992;

/** splitmix32 finaliser: a bijective avalanche of one 32-bit word. */
function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Folds a seed (any integer up to 2^53, negative allowed) into one well-mixed 32-bit word. */
function seedWord(seed: number): number {
  if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`);
  const integer = Math.trunc(seed);
  const low = integer >>> 0;
  const high = Math.floor(integer / TWO_POW_32) >>> 0;
  return mix32(low ^ mix32(high));
}

/**
 * A seed derived from a base seed and a path of integers (e.g. task index, then "support" = 0 / "query" = 1),
 * so that related streams are independent yet reproducible without threading one generator through everything.
 */
export function deriveSeed(seed: number, ...path: number[]): number {
  let h = seedWord(seed);
  for (const part of path) h = mix32(h ^ seedWord(part));
  return h;
}

/** xoshiro128** (Blackman & Vigna): 128-bit state, period 2^128 − 1, fast with 32-bit integer ops in JS. */
export class Rng {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  /** Box–Muller makes normals in pairs; the second is kept for the next call. */
  private spareNormal: number | null = null;

  constructor(seed: number) {
    // splitmix32 expands the seed into four words; this never yields the forbidden all-zero state in practice,
    // and the guard below makes sure of it.
    let x = seedWord(seed);
    const next = (): number => {
      x = (x + 0x9e3779b9) | 0;
      return mix32(x);
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** A uniform double in [0, 1) with 53 random bits. */
  next(): number {
    const high = this.nextUint32() >>> 5; // 27 bits
    const low = this.nextUint32() >>> 6; // 26 bits
    return (high * 67108864 + low) / TWO_POW_53;
  }

  /** Uniform in [low, high). */
  uniform(low = 0, high = 1): number {
    return low + (high - low) * this.next();
  }

  /** Normal with the given mean and standard deviation (Box–Muller). */
  normal(mean = 0, std = 1): number {
    if (this.spareNormal !== null) {
      const z = this.spareNormal;
      this.spareNormal = null;
      return mean + std * z;
    }
    const u1 = 1 - this.next(); // (0, 1]: log stays finite
    const u2 = this.next();
    const radius = Math.sqrt(-2 * Math.log(u1));
    this.spareNormal = radius * Math.sin(2 * Math.PI * u2);
    return mean + std * radius * Math.cos(2 * Math.PI * u2);
  }

  /**
   * A uniform integer in [0, a) with one argument, in [a, b) with two. The 53-bit double makes the
   * floor(u·range) bias below 2^-20 for any range a data pipeline uses (< 2^32).
   */
  int(a: number, b?: number): number {
    const [low, high] = b === undefined ? [0, a] : [a, b];
    if (!Number.isInteger(low) || !Number.isInteger(high) || high <= low) {
      throw new RangeError(`int: need integers low < high, got [${low}, ${high})`);
    }
    return low + Math.floor(this.next() * (high - low));
  }

  /** Shuffles in place (Fisher–Yates) and returns the same array. */
  shuffle<A extends { length: number; [index: number]: unknown }>(array: A): A {
    for (let i = array.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  /** A uniformly random permutation of 0..n−1. */
  permutation(n: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    return this.shuffle(out);
  }

  /** n values uniform in [low, high). */
  uniformArray(n: number, low = 0, high = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(low, high);
    return out;
  }

  /** n normal values. */
  normalArray(n: number, mean = 0, std = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal(mean, std);
    return out;
  }

  /** An independent generator seeded from this one (for handing a stream to a sub-task). */
  fork(): Rng {
    // 21 + 32 bits: stays an exact integer below 2^53.
    return new Rng((this.nextUint32() >>> 11) * TWO_POW_32 + this.nextUint32());
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
