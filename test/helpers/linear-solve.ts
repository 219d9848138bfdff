/** @file Test helper: float64 reference solve of A x = b by Gaussian elimination, for closed-form checks of the implicit estimators and iMAML. */

/**
 * Solves A x = b in float64, A given row-major (n × n, n = b.length), by Gaussian elimination without pivoting and
 * back substitution on copies: meant for the small symmetric positive definite systems of the tests.
 */
export function solve(a: readonly number[], b: readonly number[]): number[] {
  const n = b.length;
  const m = a.slice();
  const x = b.slice();
  for (let p = 0; p < n; p++) {
    for (let r = p + 1; r < n; r++) {
      const f = m[r * n + p] / m[p * n + p];
      for (let q = p; q < n; q++) m[r * n + q] -= f * m[p * n + q];
      x[r] -= f * x[p];
    }
  }
  for (let p = n - 1; p >= 0; p--) {
    for (let q = p + 1; q < n; q++) x[p] -= m[p * n + q] * x[q];
    x[p] /= m[p * n + p];
  }
  return x;
}
