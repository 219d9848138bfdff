/** @file Test fixture: the quadratic inner problem of the implicit-estimator tests, L_T(w, λ) = ½ wᵀAw − wᵀBλ with A symmetric positive definite (float64 data). */

/** Size of w. */
export const n = 4;
/** Size of λ. */
export const k = 3;
const M = [0.3, -0.2, 0.5, 0.1, 0.4, 0.6, -0.3, 0.2, -0.1, 0.2, 0.3, -0.5, 0.2, -0.4, 0.1, 0.3];
/** A = MMᵀ + 0.6 I (n × n, row-major): symmetric positive definite, eigenvalues in about [0.5, 2]. */
export const A = Array.from({ length: n * n }, (_, idx) => {
  const i = Math.floor(idx / n);
  const j = idx % n;
  let s = i === j ? 0.6 : 0;
  for (let l = 0; l < n; l++) s += M[i * n + l] * M[j * n + l];
  return s;
});
/** B (n × k, row-major). */
export const Bm = [1, 0.5, -0.3, 0.2, -1, 0.4, 0.7, 0.1, 0.9, -0.2, 0.3, -0.6];
/** The validation target c in L_V = ½‖w − c‖² (+ the test's λ term). */
export const c = [0.5, -1, 0.25, 2];
/** λ. */
export const lam = [0.8, -0.4, 1.2];
