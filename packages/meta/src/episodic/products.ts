/**
 * @file The second-order products every estimator of this folder is built from: one double backward through
 * ∇_w L_T(w, λ; D) gives H·u (the A-product) and ∂_λ⟨∇_w L_T, u⟩ (the B-product) for a vector u shaped like w.
 */
import { axpby, grad, mulScalar, noGrad } from '@metagrad/autograd';
import { tidy, zeros, type Tensor } from '@metagrad/tensor';
import { detachTree, dotTree, fromLeaves, leaves, mapTree, zipTree, type ParamTree } from '@metagrad/models';
import type { BilevelProblem } from '../hypergrad/types';
import { gradLeaves, gradTree } from '../hypergrad/common';

export interface MixedProducts {
  /** ∂²L_T/∂w² · u, when asked for (null otherwise). */
  hw: ParamTree | null;
  /** ∂²L_T/∂λ∂w · u = ∂_λ⟨∇_w L_T(w, λ), u⟩, when asked for (null otherwise). */
  lambda: ParamTree | null;
}

const zerosTree = <T extends ParamTree>(like: T): T => mapTree(like, (t) => noGrad(() => zeros(t.shape, 'f32', t.device)));

/**
 * One double backward: the gradient ∇_w L_T is recorded (createGraph) and ⟨∇_w L_T, u⟩ is differentiated once
 * more with respect to w and/or λ. The caller owns the returned trees.
 */
export function mixedProducts<Batch>(
  problem: BilevelProblem<ParamTree, ParamTree, Batch>,
  w: ParamTree,
  lambda: ParamTree,
  batch: Batch,
  u: ParamTree,
  want: { w: boolean; lambda: boolean },
): MixedProducts {
  return tidy(() => {
    const lam = want.lambda ? gradLeaves(lambda) : detachTree(lambda);
    const ws = gradLeaves(w);
    const loss = problem.trainLoss(ws, lam, batch);
    const g = gradTree(loss, ws, true);
    const inner = dotTree(g, u);
    const targets = [...(want.w ? leaves(ws) : []), ...(want.lambda ? leaves(lam) : [])];
    const zeroOut = (): MixedProducts => ({ hw: want.w ? zerosTree(w) : null, lambda: want.lambda ? zerosTree(lambda) : null });
    if (!inner.requiresGrad || targets.length === 0) return zeroOut();
    const gs = grad(inner, targets, { allowUnused: true });
    const filled = gs.map((x, i) => x ?? noGrad(() => zeros(targets[i].shape, 'f32', targets[i].device)));
    const nw = want.w ? leaves(w).length : 0;
    return {
      hw: want.w ? fromLeaves(w, filled.slice(0, nw)) : null,
      lambda: want.lambda ? fromLeaves(lambda, filled.slice(nw)) : null,
    };
  });
}

/** ∇_w L_V(w, λ) and ∂_λ L_V(w, λ) from one backward, plus the loss (all owned by the caller). */
export function valGradients<Batch>(problem: BilevelProblem<ParamTree, ParamTree, Batch>, w: ParamTree, lambda: ParamTree, batch: Batch): { alpha: ParamTree; direct: ParamTree; loss: Tensor } {
  return tidy(() => {
    const lam = gradLeaves(lambda);
    const ws = gradLeaves(w);
    const loss = problem.valLoss(ws, lam, batch);
    const all = { w: ws, l: lam };
    const g = gradTree(loss, all);
    return { alpha: g.w, direct: g.l, loss: noGrad(() => mulScalar(loss, 1)) };
  });
}

/** ∇_w L_T(w, λ; D) with λ held constant (the inner optimiser's gradient), owned by the caller. */
export function trainGradient<Batch>(problem: BilevelProblem<ParamTree, ParamTree, Batch>, w: ParamTree, lambda: ParamTree, batch: Batch): ParamTree {
  return tidy(() => {
    const ws = gradLeaves(w);
    const loss = problem.trainLoss(ws, detachTree(lambda), batch);
    return gradTree(loss, ws);
  });
}

/** L_T(w, λ; D) (detached) and ∇_w L_T with λ held constant, both owned by the caller. */
export function trainLossAndGradient<Batch>(problem: BilevelProblem<ParamTree, ParamTree, Batch>, w: ParamTree, lambda: ParamTree, batch: Batch): { loss: Tensor; gradient: ParamTree } {
  return tidy(() => {
    const ws = gradLeaves(w);
    const loss = problem.trainLoss(ws, detachTree(lambda), batch);
    return { gradient: gradTree(loss, ws), loss: noGrad(() => mulScalar(loss, 1)) };
  });
}

/** a·x + b·y leafwise, without a graph (new tensors owned by the caller). */
export function lincombTree<T extends ParamTree>(a: number, x: T, b: number, y: ParamTree): T {
  return noGrad(() => zipTree(x, y, (p, q) => axpby(a, p, b, q)));
}


export { zerosTree };
