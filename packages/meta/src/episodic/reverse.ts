/**
 * @file The reverse pass of Algorithms 1 (Reverse-HG, stored trajectory) and 2 (DrMAD, interpolated trajectory)
 * through heavy-ball SGD: m_t = μ m_{t−1} + ∇_w L_T(w_{t−1}, λ; D_t), w_t = w_{t−1} − η m_t (torch's convention,
 * m_0 = 0). Momentum enters exactly: the adjoint of m_t is c_t = ā_m − η ā_w, then
 *   g^SO += c_t·∂_λ∇L_T(w_{t−1}),  ā_w ← ā_w + H_t c_t,  ā_m ← μ c_t.
 * With μ = 0 this is α ← α A_t with A_t = I − ηH_t and g^SO += α B_t with B_t = −η ∂_λ∇L_T, as in the paper.
 * The Jacobians depend on w_{t−1} only (not on m), so DrMAD needs no momentum trajectory.
 */
import { disposeTree, type ParamTree } from '@metagrad/models';
import type { BilevelProblem } from '../hypergrad/types';
import { lincombTree, mixedProducts, zerosTree } from './products';

export interface ReverseOptions<Batch> {
  problem: BilevelProblem<ParamTree, ParamTree, Batch>;
  lambda: ParamTree;
  /** D_1 … D_T. */
  trainBatches: readonly Batch[];
  lr: number;
  momentum: number;
  /** ∂L_V(w_T, λ)/∂w_T (not disposed). */
  alphaT: ParamTree;
  /** w_{t−1} for step t (stored or interpolated); `release` is called on it once step t is done. */
  point(t: number): ParamTree;
  release?(w: ParamTree, t: number): void;
  /** Called after step t = T − s + 1 with s and the second-order term over the horizon s (not to be kept). */
  onHorizon?(s: number, gSO: ParamTree): void;
}

export interface ReverseResult {
  /** g^SO = ∂L_V/∂w_T · dw_T/dλ (owned by the caller). */
  gSO: ParamTree;
  /** Vector–Jacobian products, counted as the paper counts them (A- and B-products separately: 2T − 1). */
  jvps: number;
}

export function reverseHypergradient<Batch>(o: ReverseOptions<Batch>): ReverseResult {
  const T = o.trainBatches.length;
  let gSO: ParamTree = zerosTree(o.lambda);
  let aw: ParamTree = lincombTree(1, o.alphaT, 0, o.alphaT);
  let am: ParamTree | null = null;
  let jvps = 0;
  try {
    for (let t = T; t >= 1; t--) {
      // c_t = ā_m − η ā_w (ā_m = 0 at t = T).
      const c: ParamTree = am ? lincombTree(1, am, -o.lr, aw) : lincombTree(-o.lr, aw, 0, aw);
      const w = o.point(t);
      let prod;
      try {
        prod = mixedProducts(o.problem, w, o.lambda, o.trainBatches[t - 1], c, { w: t > 1, lambda: true });
      } finally {
        o.release?.(w, t);
      }
      jvps += t > 1 ? 2 : 1;
      const nextG = lincombTree(1, gSO, 1, prod.lambda!);
      disposeTree(gSO);
      disposeTree(prod.lambda!);
      gSO = nextG;
      o.onHorizon?.(T - t + 1, gSO);
      if (prod.hw) {
        const nextAw = lincombTree(1, aw, 1, prod.hw);
        disposeTree(aw);
        disposeTree(prod.hw);
        aw = nextAw;
      }
      if (am) disposeTree(am);
      am = o.momentum !== 0 ? lincombTree(o.momentum, c, 0, c) : null;
      disposeTree(c);
    }
    return { gSO, jvps };
  } catch (e) {
    disposeTree(gSO);
    throw e;
  } finally {
    disposeTree(aw);
    if (am) disposeTree(am);
  }
}

/** DrMAD's point ŵ_{t−1} = (1 − (t−1)/T) w_0 + ((t−1)/T) w_T (a new tree, owned by the caller). */
export function interpolate(w0: ParamTree, wT: ParamTree, t: number, T: number): ParamTree {
  const s = (t - 1) / T;
  return lincombTree(1 - s, w0, s, wT);
}
