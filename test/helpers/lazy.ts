/** @file Test helpers shared by the lazy-fusion tests: seeded input data and the fused-vs-eager closeness check. */
import { expect } from 'vitest';

/** n deterministic values in [lo, hi) from `seed` (a linear congruential stream). */
export function data(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed * 2654435761 + 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return lo + (s / 2 ** 32) * (hi - lo);
  });
}

/** fused and eager agree to 1e-6 relative (floor 1e-6 · the largest magnitude, for values near 0). */
export function expectClose(got: Float32Array | Int32Array | Uint32Array, want: Float32Array | Int32Array | Uint32Array, what: string): void {
  expect(got.length, what).toBe(want.length);
  const scale = Math.max(1, ...Array.from(want, Math.abs));
  for (let i = 0; i < got.length; i++) {
    const tol = 1e-6 * Math.max(Math.abs(got[i]), Math.abs(want[i])) + 1e-6 * scale;
    if (got[i] !== want[i] && !(Math.abs(got[i] - want[i]) <= tol) && !(Number.isNaN(got[i]) && Number.isNaN(want[i]))) {
      throw new Error(`${what}: element ${i}: fused ${got[i]} vs eager ${want[i]}`);
    }
  }
}
