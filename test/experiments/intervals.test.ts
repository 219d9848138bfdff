/** @file The bootstrap intervals and marks: coverage of a known mean, pairing, determinism, named errors. */
import { describe, expect, it } from 'vitest';
import { allPairs, formatInterval, markDiff, markGoal, meanInterval, pairedDiff } from '../../packages/experiments/src/intervals';

/** Box–Muller normals from a fixed LCG, so the test data never change. */
function normals(n: number, seed: number): number[] {
  let s = seed;
  const u = () => ((s = (s * 1664525 + 1013904223) % 4294967296) + 0.5) / 4294967296;
  return Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u()));
}

describe('meanInterval', () => {
  it('is close to mean ± 1.96 σ/√n for many seeds', () => {
    const xs = normals(400, 1).map((x) => 3 + 2 * x);
    const { mean, ci95, n } = meanInterval(xs);
    const se = 2 / Math.sqrt(400);
    expect(n).toBe(400);
    expect(Math.abs(mean - 3)).toBeLessThan(3 * se);
    expect((ci95[1] - ci95[0]) / (2 * 1.96 * se)).toBeGreaterThan(0.85);
    expect((ci95[1] - ci95[0]) / (2 * 1.96 * se)).toBeLessThan(1.15);
  });

  it('covers the true mean in about 95 % of repeated experiments of 10 seeds', () => {
    let covered = 0;
    for (let r = 0; r < 200; r++) {
      const { ci95 } = meanInterval(normals(10, 100 + r), { resamples: 500 });
      if (ci95[0] <= 0 && 0 <= ci95[1]) covered++;
    }
    // The percentile bootstrap under-covers a little at n = 10 (≈ 0.91); far from 0.95 would mean a bug.
    expect(covered / 200).toBeGreaterThan(0.85);
    expect(covered / 200).toBeLessThan(0.99);
  });

  it('is deterministic for a given seed and a point for one value', () => {
    const xs = normals(8, 7);
    expect(meanInterval(xs)).toEqual(meanInterval(xs));
    expect(meanInterval([0.5])).toEqual({ mean: 0.5, ci95: [0.5, 0.5], n: 1 });
  });

  it('takes seeds × tasks and names bad input', () => {
    const m = [normals(50, 1), normals(50, 2), normals(50, 3)];
    const { ci95 } = meanInterval(m);
    expect(ci95[0]).toBeLessThan(ci95[1]);
    expect(() => meanInterval([])).toThrow(/no seeds/);
    expect(() => meanInterval([[1, 2], [3]])).toThrow(/seed 1 has 1 tasks, seed 0 has 2/);
    expect(() => meanInterval([1, NaN])).toThrow(/seed 1 task 0 is NaN/);
  });
});

describe('pairedDiff', () => {
  it('pairing removes what seeds and tasks share: a tiny constant gap is resolved', () => {
    const shared = [0, 1, 2, 3, 4].map((s) => normals(100, 10 + s).map((x) => 5 * x));
    const a = shared.map((row) => row.map((x) => x + 0.01));
    const d = pairedDiff('a', a, 'b', shared);
    expect(d.meanDiff).toBeCloseTo(0.01, 10);
    expect(d.ci95[0]).toBeCloseTo(0.01, 10);
    expect(markDiff(d, '>')).toBe('✓');
    expect(markDiff(d, '<')).toBe('✗');
  });

  it('says ≈ when the difference is noise, and refuses unpaired shapes', () => {
    const d = pairedDiff('a', normals(10, 1), 'b', normals(10, 2));
    expect(markDiff(d, '<')).toBe('≈');
    expect(() => pairedDiff('a', [1, 2], 'b', [1, 2, 3])).toThrow(/a has 2 seeds × 1 tasks, b 3 × 1/);
  });

  it('allPairs gives every pair once, in order', () => {
    const pairs = allPairs({ fo: [1, 2, 3], hd: [0.5, 1.5, 2.5], neumann: [1, 1, 1] });
    expect(pairs.map((p) => `${p.a}-${p.b}`)).toEqual(['fo-hd', 'fo-neumann', 'hd-neumann']);
    expect(pairs[0].meanDiff).toBeCloseTo(0.5, 12);
  });
});

describe('marks', () => {
  it('markGoal: whole interval meets, misses, or straddles the goal', () => {
    expect(markGoal({ ci95: [0.3, 0.45] }, '<=', 0.5)).toBe('✓');
    expect(markGoal({ ci95: [0.45, 0.55] }, '<=', 0.5)).toBe('≈');
    expect(markGoal({ ci95: [0.55, 0.6] }, '<=', 0.5)).toBe('✗');
    expect(markGoal({ ci95: [2.1, 3] }, '>=', 2)).toBe('✓');
    expect(formatInterval(0.41234, [0.38, 0.4712])).toBe('0.412 [0.38, 0.471]');
  });
});
