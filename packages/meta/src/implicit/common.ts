/**
 * @file Shared by the implicit-function-theorem estimators: at an (approximately) converged w,
 *   dL_V/dλ = ∂_λ L_V − ∂²L_T/∂λ∂w · H⁻¹ ∇_w L_V,   H = ∂²L_T/∂w²,
 * with H⁻¹∇_w L_V approximated by an iterative solver that only needs Hessian-vector products.
 */
import { HvpOperator, detach, noGrad } from '@metagrad/autograd';
import { concat, reshape, type Tensor } from '@metagrad/tensor';
import { disposeTree, fromLeaves, leaves, mapTree, type ParamTree } from '@metagrad/models';
import { emptyStats, type HypergradInput, type HypergradResult, type HypergradStats } from '../hypergrad/types';
import { finishResult } from '../hypergrad/result';
import { lincombTree, mixedProducts, valGradients } from '../episodic/products';

/**
 * What a solver may return besides x: scalar tensors to read back together with the validation loss (one
 * readback for all, which the estimate makes anyway) and a check on their values that throws to reject x.
 * implicitHypergradient owns (and disposes) the tensors.
 */
export interface SolveResult {
  x: ParamTree;
  watch: Tensor[];
  check(values: readonly number[]): void;
}

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
  solve: (hvp: TreeHvp, rhs: ParamTree) => Promise<ParamTree | SolveResult>,
): Promise<HypergradResult> {
  const t0 = performance.now();
  const { problem, theta, lambda, trainBatch, valBatch } = input;
  const { alpha, direct, loss } = valGradients(problem, theta, lambda, valBatch);
  const lambdaConst = mapTree(lambda, (t) => detach(t));
  const op = new HvpOperator((...ws: Tensor[]) => problem.trainLoss(fromLeaves(theta, ws), lambdaConst, trainBatch), leaves(theta));
  let x: ParamTree | null = null;
  let watched: SolveResult | null = null;
  const stats: HypergradStats = { ...emptyStats(), gradients: 3, forwards: 3, jvps: 1 };
  try {
    const hvp: TreeHvp = {
      count: 0,
      apply(v) {
        this.count++;
        return fromLeaves(theta, op.apply(leaves(v)));
      },
    };
    const solved = await solve(hvp, alpha);
    if (isSolveResult(solved)) {
      watched = solved;
      x = solved.x;
    } else {
      x = solved;
    }
    stats.hvps = hvp.count;
  } catch (error) {
    disposeTree(direct);
    loss.dispose();
    throw error;
  } finally {
    op.dispose();
    disposeTree(lambdaConst);
    disposeTree(alpha);
  }
  try {
    const mixed = mixedProducts(problem, theta, lambda, trainBatch, x, { w: false, lambda: true }).lambda!;
    const hypergrad = lincombTree(1, direct, -1, mixed);
    disposeTree(mixed);
    if (watched === null) return await finishResult(hypergrad, loss, stats, t0);
    return await finishChecked(hypergrad, loss, watched, stats, t0);
  } finally {
    disposeTree(direct);
    disposeTree(x);
    if (watched !== null) disposeTree(watched.watch);
  }
}

function isSolveResult(value: ParamTree | SolveResult): value is SolveResult {
  return typeof value === 'object' && value !== null && 'watch' in value && 'check' in value && 'x' in value;
}

/**
 * finishResult with the solver's watched scalars read in the same readback as the validation loss: the check
 * costs no extra sync. If it throws, the hypergradient is disposed and the error propagates.
 */
async function finishChecked(hypergrad: ParamTree, loss: Tensor, solved: SolveResult, stats: HypergradStats, t0: number): Promise<HypergradResult> {
  let values: Float32Array | Int32Array | Uint32Array;
  try {
    const columns = [loss, ...solved.watch].map((t) => reshape(t, [1]));
    const all = noGrad(() => concat(columns, 0));
    columns.forEach((t) => t.dispose());
    try {
      values = await all.toArray();
    } finally {
      all.dispose();
    }
    solved.check(Array.from(values.subarray(1)));
  } catch (error) {
    disposeTree(hypergrad);
    throw error;
  } finally {
    loss.dispose();
  }
  return { hypergrad, valLoss: values[0], stats: { ...stats, ms: performance.now() - t0 } };
}
