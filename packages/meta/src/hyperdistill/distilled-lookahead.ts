/** @file HyperDistill's online hypergradient g_t = ∂_λL_V(w_t) + θS_t v_t from one backward of L_V at the point ψ. */
/*
 * HyperDistill's hypergradient at one online step, g_t = ∂_λL_V(w_t) + θ S_t v_t with
 * v_t = −η ∂_λ⟨α_t, ∇_wL_T(w*_t, λ; D*_t)⟩, from a single backward of L_V at a point ψ that has w_t's value and the
 * λ-gradient θS_t·∂Φ(w*, λ; D*)/∂λ of the look-ahead Φ(w*) = w* − η∇_wL_T(w*, λ; D*).
 */
import { add, detach, mul, mulScalar, sub } from '@metagrad/autograd';
import { tidy, type Tensor } from '@metagrad/tensor';
import { tree, type ParamTree } from '@metagrad/models';
import type { BilevelProblem } from '../hypergrad/types';
import { gradLeaves, gradTree } from '../hypergrad/common';

export interface DistilledLookaheadInput<Batch> {
  problem: BilevelProblem<ParamTree, ParamTree, Batch>;
  lambda: ParamTree;
  valBatch: Batch;
  /** η. */
  innerLr: number;
}

/**
 * g_t and L_V(w_t) for w_t = `wt`, the distilled point and batch, and the scale θ·S_t: a host number (eager) or a
 * one-element tensor (compiled steps, where it changes from step to step).
 */
export function distilledLookahead<Batch>(
  input: DistilledLookaheadInput<Batch>,
  wt: ParamTree,
  wStar: ParamTree,
  dStar: Batch,
  scale: number | Tensor,
): { hypergrad: ParamTree; loss: Tensor } {
  return tidy(() => {
    const lambda = gradLeaves(input.lambda);
    const ws = gradLeaves(wStar);
    const phi = tree.axpy(-input.innerLr, gradTree(input.problem.trainLoss(ws, lambda, dStar), ws, true), ws); // Φ(w*)
    // ψ = w_t + scale·(Φ − detach Φ): the value of w_t, the λ-gradient of scale·Φ.
    const psi = tree.zip(wt, phi, (w, f) => {
      const d = sub(f, detach(f));
      return add(w, typeof scale === 'number' ? mulScalar(d, scale) : mul(d, scale));
    });
    const loss = input.problem.valLoss(psi, lambda, input.valBatch);
    return { hypergrad: gradTree(loss, lambda), loss };
  });
}
