/** @file The implicit-function-theorem hypergradient dL_V/dλ = ∂_λL_V − Mᵀx around any solver for x ≈ H⁻¹∇θL_V. */
/*
 * Shared by the implicit-function-theorem estimators: at an (approximately) converged θ,
 *   dL_V/dλ = ∂_λL_V − Mᵀ x,   x ≈ H⁻¹ ∇θL_V,   H = ∂²L_T/∂θ²,   M = ∂²L_T/∂θ∂λ,
 * with x from an iterative solver that only needs Hessian-vector products.
 */
import { HvpOperator, noGrad } from '@metagrad/autograd';
import { scope, type Tensor } from '@metagrad/tensor';
import { tree, type ParamTree } from '@metagrad/models';
import { emptyStats, type HypergradInput, type HypergradResult, type ImplicitIntermediates, type HypergradWith } from '../hypergrad/types';
import { requireTrainBatch } from '../hypergrad/common';
import { mixedProducts, valGradients } from '../core';
import { readScalars } from '../hypergrad/readback';

/**
 * What a solver returns: x, optionally Neumann's partial sums, and scalar tensors to read back together with the
 * validation loss (one readback for all, which the estimate makes anyway) with a check on their values that
 * throws to reject x. Everything the solver made and the result does not return is freed by the caller's scope.
 */
export interface SolveResult<Θ extends ParamTree> {
  x: Θ;
  series?: Θ[];
  watch?: Tensor[];
  check?(values: readonly number[]): void;
}

/** The solver's view of the Hessian: v ↦ H·v on trees shaped like θ (λ held constant). */
export type TreeHvp<Θ extends ParamTree> = (v: Θ) => Θ;

export type ImplicitResult<Θ extends ParamTree, Λ extends ParamTree> = HypergradWith<HypergradResult<Λ>, ImplicitIntermediates<Θ>>;

/**
 * Runs `solve` with an HVP operator at (θ, λ) (one recorded gradient graph reused by every product), then forms
 * the hypergradient from its x ≈ H⁻¹ ∇θL_V. Stats count the HVPs and the one mixed product (as a JVP).
 */
export async function implicitHypergradient<Θ extends ParamTree, Λ extends ParamTree, B>(
  input: HypergradInput<Θ, Λ, B>,
  solve: (hvp: TreeHvp<Θ>, rhs: Θ) => Promise<SolveResult<Θ>>,
): Promise<ImplicitResult<Θ, Λ>> {
  const t0 = performance.now();
  const { problem, theta, lambda, valBatch } = input;
  const trainBatch = requireTrainBatch('implicit hypergradient', input);
  return scope(async () => {
    // ∇θL_V and ∂λL_V from one backward (the validation graph is freed before the solve).
    const { alpha: gradV, direct, loss } = valGradients(problem, theta, lambda, valBatch);
    // H·v through one recorded ∇θL_T at (θ, λ), λ constant.
    const fixedLambda = tree.detach(lambda);
    const op = new HvpOperator((...ws: Tensor[]) => problem.trainLoss(tree.fromLeaves(theta, ws), fixedLambda, trainBatch), tree.leaves(theta));
    let hvps = 0;
    const hvp: TreeHvp<Θ> = (v) => {
      hvps++;
      return tree.fromLeaves(theta, op.apply(tree.leaves(v)));
    };
    const solved = await solve(hvp, gradV);
    op.dispose(); // the recorded graph, before the mixed product builds its own (the scope frees it on a throw)
    const mixed = mixedProducts(problem, theta, lambda, trainBatch, solved.x, { w: false, lambda: true }).lambda!; // Mᵀx = ∂_λ⟨∇θL_T, x⟩
    const hypergrad = noGrad(() => tree.sub(direct, mixed)); // ∂λL_V − Mᵀx
    const [valLoss, ...watched] = await readScalars([loss, ...(solved.watch ?? [])]);
    solved.check?.(watched);
    const stats = { ...emptyStats(), gradients: 3, forwards: 3, jvps: 1, hvps, ms: performance.now() - t0 };
    const out: ImplicitResult<Θ, Λ> = { hypergrad, valLoss, stats };
    if (input.intermediates) {
      out.solution = solved.x;
      if (solved.series) out.series = solved.series;
    }
    return out;
  });
}
