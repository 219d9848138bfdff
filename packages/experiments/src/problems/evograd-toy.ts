/**
 * @file The EvoGrad paper's 1-D toy bilevel problem (Figs. 2–3) as a `BilevelProblem` on [1]-tensors:
 * f_T(x, λ) = (x − 1)² + λx², f_V(x) = (x − 0.5)². Its closed-form hypergradient, the float64 EvoGrad oracle and
 * the λ grid live in @metagrad/models (`toyHypergradient`, `toyEvogradHypergradient`, `toyLambdaGrid`). Used by
 * experiment E1 and the browser's EvoGrad toy page. Browser-safe.
 */
import { add, addScalar, mul, reshape, square, sum } from '@metagrad/autograd';
import type { BilevelProblem } from '@metagrad/meta';
import { tidy, type Tensor } from '@metagrad/tensor';

// Type aliases (not interfaces) so they are assignable to ParamTree's index signature.
/** θ: the model's single weight x, shape [1] (or [K, 1] for K stacked copies). */
export type ToyTheta = { readonly x: Tensor };
/** λ: the regulariser weight, shape [1]. */
export type ToyLambda = { readonly lambda: Tensor };

/** (x − 1)² + λx² elementwise; x may be [1] or K stacked copies [K, 1]. */
const trainTerms = (x: Tensor, lambda: Tensor): Tensor => add(square(addScalar(x, -1)), mul(lambda, square(x)));

/**
 * The toy as a BilevelProblem (no batches). `batchedTrainLoss` takes K stacked copies x [K, 1] and returns the K
 * losses, so EvoGrad evaluates its K perturbed copies in one forward. Intermediates are freed (tidy); the graph keeps
 * what backward needs.
 */
export const evogradToyProblem: BilevelProblem<ToyTheta, ToyLambda, null> = {
  trainLoss: (theta, lambda) => tidy(() => sum(trainTerms(theta.x, lambda.lambda))),
  batchedTrainLoss: (thetas, lambda) => tidy(() => reshape(trainTerms(thetas.x, lambda.lambda), [thetas.x.shape[0]])),
  valLoss: (theta) => tidy(() => sum(square(addScalar(theta.x, -0.5)))),
};
