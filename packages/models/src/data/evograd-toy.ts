/**
 * @file The EvoGrad paper's 1-D toy problem (experiment E1) in float64 closed form: the losses, the optimum,
 * the exact hypergradient, and a host EvoGrad estimate from given perturbations, as an oracle for the
 * GPU estimator.
 */

/** Temperature of the toy experiment's softmax over perturbed copies. */
export const TOY_TAU = 0.5;
/** λ range of the correlation study (100 values in it, 100 trials each). */
export const TOY_LAMBDA_RANGE = [0.1, 2] as const;
/** (x, λ) starts of the paper's SGD trajectories (5 steps at lr 0.1). */
export const TOY_TRAJECTORY_STARTS: readonly (readonly [number, number])[] = [
  [-1.8, 0.2],
  [-0.9, 1.2],
  [0.9, 0.8],
  [1.3, 0.2],
  [1.5, 1.7],
];

/** f_T(x, λ) = (x − 1)² + λx². */
export function toyTrainLoss(x: number, lambda: number): number {
  return (x - 1) ** 2 + lambda * x * x;
}

/** ∂f_T/∂x = 2(x − 1) + 2λx. */
export function toyTrainGradX(x: number, lambda: number): number {
  return 2 * (x - 1) + 2 * lambda * x;
}

/** f_V(x) = (x − 0.5)². */
export function toyValLoss(x: number): number {
  return (x - 0.5) ** 2;
}

/** df_V/dx = 2(x − 0.5). */
export function toyValGrad(x: number): number {
  return 2 * (x - 0.5);
}

/** x*(λ) = argmin_x f_T(x, λ) = 1 / (1 + λ). */
export function toyOptimalX(lambda: number): number {
  return 1 / (1 + lambda);
}

/** d f_V(x*(λ)) / dλ = (λ − 1) / (λ + 1)³, the exact hypergradient at the inner optimum. */
export function toyHypergradient(lambda: number): number {
  return (lambda - 1) / (lambda + 1) ** 3;
}

/** `count` evenly spaced λ in [low, high], both ends included. */
export function toyLambdaGrid(count = 100, low: number = TOY_LAMBDA_RANGE[0], high: number = TOY_LAMBDA_RANGE[1]): Float64Array {
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = count === 1 ? low : low + ((high - low) * i) / (count - 1);
  return out;
}

/**
 * EvoGrad's hypergradient for the toy with the given perturbations ε_k (already scaled by σ): copies
 * x_k = x + ε_k, weights w = softmax(−f_T(x_k, λ)/τ), x* = Σ w_k x_k, estimate = d f_V(x*)/dλ, where
 * dw_k/dλ = w_k (Σ_j w_j x_j² − x_k²)/τ because ∂f_T/∂λ = x². Exact in float64 (no finite differences).
 */
export function toyEvogradHypergradient(x: number, lambda: number, perturbations: ArrayLike<number>, tau: number = TOY_TAU): number {
  const k = perturbations.length;
  if (k < 1) throw new RangeError('toyEvogradHypergradient: need at least one perturbation');
  const copies = Array.from(perturbations, (epsilon) => x + epsilon);
  const logits = copies.map((xk) => -toyTrainLoss(xk, lambda) / tau);
  const maxLogit = Math.max(...logits); // subtract the max so exp never overflows
  const unnormalised = logits.map((logit) => Math.exp(logit - maxLogit));
  const total = unnormalised.reduce((a, b) => a + b, 0);
  const weights = unnormalised.map((u) => u / total);
  let xStar = 0;
  let meanSquare = 0;
  for (let i = 0; i < k; i++) {
    xStar += weights[i] * copies[i];
    meanSquare += weights[i] * copies[i] * copies[i];
  }
  let dxStar = 0;
  for (let i = 0; i < k; i++) dxStar += copies[i] * weights[i] * ((meanSquare - copies[i] * copies[i]) / tau);
  return toyValGrad(xStar) * dxStar;
}
