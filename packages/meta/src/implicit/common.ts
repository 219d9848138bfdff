/**
 * @file Shared by the implicit-function-theorem estimators: at an (approximately) converged w,
 *   dL_V/dλ = ∂_λ L_V − ∂²L_T/∂λ∂w · H⁻¹ ∇_w L_V,   H = ∂²L_T/∂w²,
 * with H⁻¹∇_w L_V approximated by an iterative solver that only needs Hessian-vector products.
 */
import { HvpOperator, detach } from '@metagrad/autograd';
import type { Tensor } from '@metagrad/tensor';
import { disposeTree, fromLeaves, leaves, mapTree, type ParamTree } from '@metagrad/models';
import { emptyStats, type HypergradInput, type HypergradResult, type HypergradStats } from '../hypergrad/types';
import { finishResult } from '../hypergrad/result';
import { lincombTree, mixedProducts, valGradients } from '../episodic/products';

/** The solver's view of the Hessian: H·v on trees shaped like w (λ held constant). */
export interface TreeHvp {
  apply(v: ParamTree): ParamTree;
  count: number;
}

/**
 * Runs `solve` with an HVP operator at (w, λ) (one recorded gradient graph reused by every product), then forms
 * the hypergradient from the solution x ≈ H⁻¹ ∇_w L_V. Stats count the HVPs and the one mixed product (as a JVP).
 */
export async function implicitHypergradient<Batch>(
  input: HypergradInput<Batch>,
  solve: (hvp: TreeHvp, rhs: ParamTree) => Promise<ParamTree>,
): Promise<HypergradResult> {
  const t0 = performance.now();
  const { problem, theta, lambda, trainBatch, valBatch } = input;
  const { alpha, direct, loss } = valGradients(problem, theta, lambda, valBatch);
  const lambdaConst = mapTree(lambda, (t) => detach(t));
  const op = new HvpOperator((...ws: Tensor[]) => problem.trainLoss(fromLeaves(theta, ws), lambdaConst, trainBatch), leaves(theta));
  let x: ParamTree | null = null;
  const stats: HypergradStats = { ...emptyStats(), gradients: 3, forwards: 3, jvps: 1 };
  try {
    const hvp: TreeHvp = {
      count: 0,
      apply(v) {
        this.count++;
        return fromLeaves(theta, op.apply(leaves(v)));
      },
    };
    x = await solve(hvp, alpha);
    stats.hvps = hvp.count;
  } finally {
    op.dispose();
    disposeTree(lambdaConst);
    disposeTree(alpha);
  }
  try {
    const mixed = mixedProducts(problem, theta, lambda, trainBatch, x, { w: false, lambda: true }).lambda!;
    const hypergrad = lincombTree(1, direct, -1, mixed);
    disposeTree(mixed);
    return await finishResult(hypergrad, loss, stats, t0);
  } finally {
    disposeTree(direct);
    disposeTree(x);
  }
}
