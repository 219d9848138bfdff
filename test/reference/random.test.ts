import { describe, expect, it } from 'vitest';
import {
  bernoulli,
  mulhi32,
  normal,
  permutation,
  philox4x32,
  rademacher,
  randint,
  randomBits,
  seedKey,
  uniform,
} from '../../packages/tensor/src/reference/index';
import { rng } from './helpers';

describe('philox4x32', () => {
  it('matches the Random123 known-answer vectors', () => {
    expect(philox4x32([0, 0, 0, 0], [0, 0])).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    expect(philox4x32([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff])).toEqual([0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    expect(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])).toEqual([0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
  });

  it('mulhi32 agrees with BigInt on random and extreme operands', () => {
    const r = rng(7);
    const cases: [number, number][] = [
      [0, 0],
      [0xffffffff, 0xffffffff],
      [0xd2511f53, 0xffffffff],
      [1, 0xffffffff],
      [0x10000, 0x10000],
    ];
    for (let i = 0; i < 2000; i++) cases.push([Math.floor(r() * 2 ** 32), Math.floor(r() * 2 ** 32)]);
    for (const [a, b] of cases) expect(mulhi32(a, b)).toBe(Number((BigInt(a) * BigInt(b)) >> 32n));
  });
});

describe('random ops', () => {
  it('seed splitting and element counters follow OPS.md', () => {
    expect(seedKey(2 ** 32 + 5)).toEqual([5, 1]);
    expect(seedKey([3, 4])).toEqual([3, 4]);
    const bits = randomBits([2, 3], 42, { offset: 9 });
    expect(bits.shape).toEqual([2, 3]);
    for (let i = 0; i < 6; i++) expect(bits.data[i]).toBe(philox4x32([i, 9, 0, 0], [42, 0])[0]);
  });

  it('uniform is the 24-bit derivation, exactly representable in f32', () => {
    const u = uniform([1000], 1);
    const w = randomBits([1000], 1);
    for (let i = 0; i < 1000; i++) {
      expect(u.data[i]).toBe((w.data[i] >>> 8) * 2 ** -24);
      expect(Math.fround(u.data[i])).toBe(u.data[i]);
    }
    const m = u.data.reduce((a, b) => a + b, 0) / 1000;
    expect(Math.abs(m - 0.5)).toBeLessThan(0.05);
    const s = uniform([100], 1, { low: -2, high: 3 });
    for (const v of s.data) {
      expect(v).toBeGreaterThanOrEqual(-2);
      expect(v).toBeLessThan(3);
      expect(Math.fround(v)).toBe(v);
    }
  });

  it('normal follows Box-Muller on words 0 and 1 and has roughly unit moments', () => {
    const z = normal([4000], 3, { offset: 1 });
    const w0 = philox4x32([5, 1, 0, 0], [3, 0]);
    const u1 = ((w0[0] >>> 8) + 1) * 2 ** -24;
    const u2 = (w0[1] >>> 8) * 2 ** -24;
    expect(z.data[5]).toBe(Math.fround(Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2)));
    const mean = z.data.reduce((a, b) => a + b, 0) / z.data.length;
    const v = z.data.reduce((a, b) => a + (b - mean) ** 2, 0) / z.data.length;
    expect(Math.abs(mean)).toBeLessThan(0.06);
    expect(Math.abs(v - 1)).toBeLessThan(0.08);
    const shifted = normal([10], 3, { offset: 1, mean: 2, std: 0.5 });
    for (let i = 0; i < 10; i++) expect(shifted.data[i]).toBeCloseTo(2 + 0.5 * z.data[i], 6);
  });

  it('rademacher, bernoulli, randint, permutation', () => {
    const w = randomBits([500], 11);
    const r = rademacher([500], 11);
    const b = bernoulli([500], 11, 0.3);
    const k = randint([500], 11, -3, 4);
    for (let i = 0; i < 500; i++) {
      expect(r.data[i]).toBe(w.data[i] % 2 === 1 ? 1 : -1);
      expect(b.data[i]).toBe((w.data[i] >>> 8) * 2 ** -24 < Math.fround(0.3) ? 1 : 0);
      expect(k.data[i]).toBe(-3 + (w.data[i] % 7));
    }
    const frac = b.data.reduce((a, c) => a + c, 0) / 500;
    expect(Math.abs(frac - 0.3)).toBeLessThan(0.07);
    const p = permutation(50, 5);
    expect([...p.data].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    const keys = randomBits([50], 5).data;
    for (let i = 1; i < 50; i++) expect(keys[p.data[i - 1]]).toBeLessThanOrEqual(keys[p.data[i]]);
    expect(() => randint([2], 1, 3, 3)).toThrow();
    expect(() => bernoulli([2], 1, 1.5)).toThrow();
    expect(() => seedKey(-1)).toThrow();
  });
});
