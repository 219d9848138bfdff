/** @file The seeded host PRNG's statistics and reproducibility, batch iteration and row gathering. */
import { describe, expect, it } from 'vitest';
import { IndexOutOfRangeError, InvalidArgumentError } from '@metagrad/tensor';
import { batchIterator, batchesPerEpoch, takeRows } from '../../packages/models/src/data/batches';
import { balancedIndices, labelHistogram, selectExamples } from '../../packages/models/src/data/image-dataset';
import { Rng, deriveSeed } from '../../packages/models/src/data/random';

describe('Rng', () => {
  it('is reproducible from the seed and differs across seeds', () => {
    const draw = (seed: number) => {
      const rng = new Rng(seed);
      return Array.from({ length: 8 }, (_, i) => (i % 2 ? rng.nextUint32() : rng.next()));
    };
    expect(draw(1)).toEqual(draw(1));
    const a = new Rng(1);
    const b = new Rng(2);
    expect(Array.from({ length: 4 }, () => a.nextUint32())).not.toEqual(Array.from({ length: 4 }, () => b.nextUint32()));
    // Large and negative seeds are distinct streams too.
    expect(new Rng(2 ** 40).nextUint32()).not.toBe(new Rng(0).nextUint32());
    expect(new Rng(-1).nextUint32()).not.toBe(new Rng(1).nextUint32());
  });

  it('uniform, normal and int have the right moments and ranges', () => {
    const rng = new Rng(42);
    const n = 100000;
    let sumU = 0;
    let sumN = 0;
    let sumN2 = 0;
    const counts = new Array(7).fill(0);
    let inRange = true;
    for (let i = 0; i < n; i++) {
      const u = rng.uniform(-2, 3);
      inRange &&= u >= -2 && u < 3;
      sumU += u;
      const z = rng.normal(1, 2);
      sumN += z;
      sumN2 += (z - 1) ** 2;
      counts[rng.int(3, 10) - 3]++;
    }
    expect(inRange).toBe(true);
    expect(sumU / n).toBeCloseTo(0.5, 1.5);
    expect(sumN / n).toBeCloseTo(1, 1.5);
    expect(Math.sqrt(sumN2 / n)).toBeCloseTo(2, 1.5);
    for (const c of counts) expect(Math.abs(c / n - 1 / 7)).toBeLessThan(0.005);
    expect(() => rng.int(5, 5)).toThrow(RangeError);
  });

  it('shuffle and permutation are permutations; fork gives an independent stream', () => {
    const rng = new Rng(5);
    const perm = rng.permutation(1000);
    expect(Array.from(perm).sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(Array.from(perm.subarray(0, 10))).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const words = ['a', 'b', 'c', 'd'];
    expect(rng.shuffle(words)).toBe(words);
    expect([...words].sort()).toEqual(['a', 'b', 'c', 'd']);
    const parent = new Rng(9);
    const child = parent.fork();
    expect(child.nextUint32()).not.toBe(parent.nextUint32());
  });

  it('deriveSeed separates paths and is stable', () => {
    expect(deriveSeed(1, 2, 3)).toBe(deriveSeed(1, 2, 3));
    const seeds = new Set([deriveSeed(1), deriveSeed(1, 0), deriveSeed(1, 1), deriveSeed(1, 0, 0), deriveSeed(2, 0), deriveSeed(1, 0, 1)]);
    expect(seeds.size).toBe(6);
  });
});

describe('batchIterator', () => {
  it('covers every index once per epoch, in batches of batchSize with a short tail', () => {
    const batches = [...batchIterator({ n: 10, batchSize: 4, seed: 1 })];
    expect(batches.map((b) => b.length)).toEqual([4, 4, 2]);
    expect(batches.every((b) => b instanceof Int32Array)).toBe(true);
    expect(batches.flatMap((b) => Array.from(b)).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(batchesPerEpoch(10, 4)).toBe(3);
  });

  it('dropLast keeps shapes fixed; epochs reshuffle; same seed → same order', () => {
    const run = (seed: number) => [...batchIterator({ n: 10, batchSize: 4, seed, dropLast: true, epochs: 3 })].map((b) => Array.from(b));
    const a = run(3);
    expect(a.length).toBe(6);
    expect(a.every((b) => b.length === 4)).toBe(true);
    expect(run(3)).toEqual(a);
    expect(run(4)).not.toEqual(a);
    expect(a.slice(0, 2)).not.toEqual(a.slice(2, 4));
    expect(batchesPerEpoch(10, 4, true)).toBe(2);
  });

  it('unshuffled order, endless streams and argument checks', () => {
    expect([...batchIterator({ n: 5, batchSize: 2, seed: 0, shuffle: false })].map((b) => Array.from(b))).toEqual([[0, 1], [2, 3], [4]]);
    const endless = batchIterator({ n: 3, batchSize: 2, seed: 0, epochs: Infinity });
    for (let i = 0; i < 100; i++) expect(endless.next().done).toBe(false);
    expect(() => [...batchIterator({ n: 3, batchSize: 4, seed: 0, dropLast: true, epochs: Infinity })]).toThrow(/would hang/);
    expect(() => [...batchIterator({ n: 3, batchSize: 0, seed: 0 })]).toThrow(/batchSize/);
  });
});

describe('takeRows / selectExamples / balancedIndices', () => {
  it('gathers rows of any width into the same array type', () => {
    const images = Float32Array.from({ length: 12 }, (_, i) => i); // 4 rows of 3
    const rows = takeRows(images, 3, Int32Array.of(2, 0, 2));
    expect(rows).toBeInstanceOf(Float32Array);
    expect(Array.from(rows)).toEqual([6, 7, 8, 0, 1, 2, 6, 7, 8]);
    const labels = takeRows(Int32Array.of(5, 6, 7, 8), 1, [3, 1]);
    expect(labels).toBeInstanceOf(Int32Array);
    expect(Array.from(labels)).toEqual([8, 6]);
    expect(() => takeRows(images, 3, [4])).toThrow(/row index 4 \(indices\[0\]\) out of range \[0, 4\)/);
    expect(() => takeRows(images, 5, [0])).toThrow(/not a whole number of rows/);
  });

  it('bad rows and arguments are the named errors a GPU gather would raise (IndexOutOfRangeError names the op)', () => {
    const images = Float32Array.from({ length: 12 }, (_, i) => i);
    for (const bad of [4, -1, 1.5, NaN]) {
      let thrown: unknown;
      try {
        takeRows(images, 3, [0, bad]);
      } catch (e) {
        thrown = e;
      }
      expect(thrown, `row ${bad}`).toBeInstanceOf(IndexOutOfRangeError);
      expect((thrown as IndexOutOfRangeError).op).toBe('takeRows');
      expect((thrown as Error).message).toContain('indices[1]');
    }
    expect(() => takeRows(images, 5, [0])).toThrow(InvalidArgumentError);
    expect(() => takeRows(images, 3, 2 as never)).toThrow(InvalidArgumentError);
    expect(() => takeRows([1, 2, 3] as never, 1, [0])).toThrow(InvalidArgumentError);
  });

  it('selectExamples copies images and labels; balancedIndices is class-balanced and seeded', () => {
    const labels = Int32Array.from({ length: 100 }, (_, i) => i % 4);
    const dataset = {
      images: Float32Array.from({ length: 100 * 4 }, (_, i) => i),
      labels,
      n: 100,
      height: 2,
      width: 2,
    };
    const subset = selectExamples(dataset, [3, 50]);
    expect(subset.n).toBe(2);
    expect(Array.from(subset.images)).toEqual([12, 13, 14, 15, 200, 201, 202, 203]);
    expect(Array.from(subset.labels)).toEqual([3, 2]);
    const chosen = balancedIndices(labels, 4, 10, 1);
    expect(chosen.length).toBe(40);
    expect(new Set(chosen).size).toBe(40);
    expect(labelHistogram(takeRows(labels, 1, chosen), 4)).toEqual([10, 10, 10, 10]);
    expect(Array.from(balancedIndices(labels, 4, 10, 1))).toEqual(Array.from(chosen));
    expect(() => balancedIndices(labels, 4, 30, 1)).toThrow(/class 0 has 25 examples/);
  });
});
