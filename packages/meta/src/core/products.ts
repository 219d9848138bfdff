/** @file The derivatives the episodic estimators are built from: ∇_wL_T, ∇L_V, and the A- and B-products H·u, ∂_λ⟨∇_wL_T, u⟩. */
/*
 * The derivatives every episodic estimator is built from: ∇_w L_T, (L_V, ∇_w L_V, ∂_λ L_V), and one double
 * backward through ∇_w L_T(w, λ; D) for H·u (the A-product) and ∂_λ⟨∇_w L_T, u⟩ (the B-product), u shaped like w.
 * Each is a pure function (a tidy): the caller owns what it returns and nothing else survives.
 */
import { axpby, detach, grad, noGrad } from '@metagrad/autograd';
import { tidy, zeros, type Tensor } from '@metagrad/tensor';
import { tree, type ParamTree } from '@metagrad/models';
import type { BilevelProblem } from '../hypergrad/types';
import { gradLeaves, gradTree } from '../hypergrad/common';

export interface MixedProducts<Θ extends ParamTree = ParamTree, Λ extends ParamTree = ParamTree> {
  /** ∂²L_T/∂w² · u, when asked for (null otherwise). */
  hw: Θ | null;
  /** ∂²L_T/∂λ∂w · u = ∂_λ⟨∇_w L_T(w, λ), u⟩, when asked for (null otherwise). */
  lambda: Λ | null;
}

/** Zeros shaped like `like` (no graph). */
export const zerosTree = <T extends ParamTree>(like: T): T => tree.map(like, (t) => noGrad(() => zeros(t.shape, 'f32', t.device)));

/** a·x + b·y leafwise, without a graph (one fused dispatch per leaf). */
export function lincombTree<T extends ParamTree>(a: number, x: T, b: number, y: ParamTree): T {
  return noGrad(() => tree.zip(x, y, (p, q) => axpby(a, p, b, q)));
}

/** H·u and/or ∂_λ⟨∇_w L_T, u⟩ from one double backward: ⟨∇_w L_T, u⟩ (∇ recorded) differentiated once more. */
export function mixedProducts<Θ extends ParamTree, Λ extends ParamTree, Batch>(
  problem: BilevelProblem<Θ, Λ, Batch>,
  w: Θ,
  lambda: Λ,
  batch: Batch,
  u: ParamTree,
  want: { w: boolean; lambda: boolean },
): MixedProducts<Θ, Λ> {
  return tidy(() => {
    const lam = want.lambda ? gradLeaves(lambda) : tree.detach(lambda);
    const ws = gradLeaves(w);
    const inner = tree.dot(gradTree(problem.trainLoss(ws, lam, batch), ws, true), u);
    const targets = [...(want.w ? tree.leaves(ws) : []), ...(want.lambda ? tree.leaves(lam) : [])];
    if (!inner.requiresGrad || targets.length === 0) return { hw: want.w ? zerosTree(w) : null, lambda: want.lambda ? zerosTree(lambda) : null };
    const gs = grad(inner, targets, { allowUnused: true }).map((x, i) => x ?? noGrad(() => zeros(targets[i].shape, 'f32', targets[i].device)));
    const nw = want.w ? tree.leaves(w).length : 0;
    return {
      hw: want.w ? tree.fromLeaves(w, gs.slice(0, nw)) : null,
      lambda: want.lambda ? tree.fromLeaves(lambda, gs.slice(nw)) : null,
    };
  });
}

/** α = ∇_w L_V(w, λ) and the direct term ∂_λ L_V(w, λ) from one backward, with L_V (detached). */
export function valGradients<Θ extends ParamTree, Λ extends ParamTree, Batch>(
  problem: BilevelProblem<Θ, Λ, Batch>,
  w: Θ,
  lambda: Λ,
  batch: Batch,
): { alpha: Θ; direct: Λ; loss: Tensor } {
  return tidy(() => {
    const [ws, lam] = [gradLeaves(w), gradLeaves(lambda)];
    const loss = problem.valLoss(ws, lam, batch);
    const g = gradTree(loss, { w: ws, l: lam });
    return { alpha: g.w, direct: g.l, loss: detach(loss) };
  });
}

/** ∇_w L_T(w, λ; D) with λ held constant (the inner optimiser's gradient). */
export function trainGradient<Batch>(problem: BilevelProblem<ParamTree, ParamTree, Batch>, w: ParamTree, lambda: ParamTree, batch: Batch): ParamTree {
  return tidy(() => {
    const ws = gradLeaves(w);
    return gradTree(problem.trainLoss(ws, tree.detach(lambda), batch), ws);
  });
}

/** L_T(w, λ; D) (detached) and ∇_w L_T with λ held constant. */
export function trainLossAndGradient<Batch>(
  problem: BilevelProblem<ParamTree, ParamTree, Batch>,
  w: ParamTree,
  lambda: ParamTree,
  batch: Batch,
): { loss: Tensor; gradient: ParamTree } {
  return tidy(() => {
    const ws = gradLeaves(w);
    const loss = problem.trainLoss(ws, tree.detach(lambda), batch);
    return { gradient: gradTree(loss, ws), loss: detach(loss) };
  });
}
