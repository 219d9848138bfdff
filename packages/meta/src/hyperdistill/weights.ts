/** @file HyperDistill's decay weights: S_t and the mixing weights of eq. 13 (online) and eq. 17 (reversed). */
/*
 * The decay weights of HyperDistill: S_t = Σ_{i=1}^t γ^{t−i} = (1 − γ^t)/(1 − γ) (t at γ = 1), the online
 * mixing weight p_t = (γ − γ^t)/(1 − γ^t) of eq. 13 (w*_t = p_t w*_{t−1} + (1 − p_t) w_{t−1}) and the reversed one
 * p_s = (1 − γ^{s−1})/(1 − γ^s) of eq. 17. Both make w* the γ-weighted average of eq. 12, newest weight 1.
 */

/** S_t = Σ_{i=0}^{t−1} γ^i. */
export function decaySum(gamma: number, t: number): number {
  if (gamma === 1) return t;
  return (1 - gamma ** t) / (1 - gamma);
}

/** Eq. 13's p_t (t ≥ 2): the weight kept by the running point; 0 at γ = 0 (w*_t = w_{t−1}). */
export function onlineMix(gamma: number, t: number): number {
  if (t < 2) return 0;
  return (gamma * decaySum(gamma, t - 1)) / decaySum(gamma, t);
}

/** Eq. 17's p_s (s ≥ 2): the weight kept by the newer points when an older one joins; 1 at γ = 0. */
export function reverseMix(gamma: number, s: number): number {
  if (s < 2) return 0;
  return decaySum(gamma, s - 1) / decaySum(gamma, s);
}
