/** @file The reverse pass of Reverse-HG and DrMAD through heavy-ball SGD, as a pure step carried from t = T down to 1. */
/*
 * The reverse pass of Algorithms 1 (Reverse-HG, stored trajectory) and 2 (DrMAD, interpolated trajectory)
 * through heavy-ball SGD: m_t = μ m_{t−1} + ∇_w L_T(w_{t−1}, λ; D_t), w_t = w_{t−1} − η m_t (torch's convention,
 * m_0 = 0). Momentum enters exactly: the adjoint of m_t is c_t = ā_m − η ā_w, then
 *   g^SO += ∂_λ⟨∇L_T(w_{t−1}), c_t⟩,  ā_w ← ā_w + H_t c_t,  ā_m ← μ c_t.
 * With μ = 0 this is α ← α A_t with A_t = I − ηH_t and g^SO += α B_t with B_t = −η ∂_λ∇L_T, as in the paper.
 * The Jacobians depend on w_{t−1} only (not on m), so DrMAD needs no momentum trajectory.
 */
import { tidy } from '@metagrad/tensor';
import { tree, type ParamTree } from '@metagrad/models';
import type { BilevelProblem } from '../hypergrad/types';
import { lincombTree, mixedProducts, zerosTree } from './products';
import { carry } from './loop';

export interface ReverseOptions<Batch> {
  problem: BilevelProblem<ParamTree, ParamTree, Batch>;
  lambda: ParamTree;
  /** D_1 … D_T. */
  trainBatches: readonly Batch[];
  lr: number;
  momentum: number;
  /** α_T = ∂L_V(w_T, λ)/∂w_T (the caller's). */
  alphaT: ParamTree;
  /** w_{t−1} for step t: a stored iterate, or a point made here (freed with the step). */
  point(t: number): ParamTree;
}

/** The adjoints between reverse steps: g^SO so far, ā_w, ā_m (null when μ = 0 or at t = T), and the JVPs spent. */
export interface ReverseState {
  gSO: ParamTree;
  aw: ParamTree;
  am: ParamTree | null;
  jvps: number;
}

export interface ReverseResult {
  /** g^SO = ∂L_V/∂w_T · dw_T/dλ (owned by the caller). */
  gSO: ParamTree;
  /** Vector–Jacobian products, counted as the paper counts them (A- and B-products separately: 2T − 1). */
  jvps: number;
}

/** Before step T: g^SO = 0, ā_w = α_T, ā_m = 0. */
export const reverseStart = (lambda: ParamTree, alphaT: ParamTree): ReverseState => ({
  gSO: zerosTree(lambda),
  aw: alphaT,
  am: null,
  jvps: 0,
});

/** Reverse step t at w = w_{t−1} (pure): one double backward gives both products (H·c only while t > 1). */
export function reverseStep<Batch>(o: Omit<ReverseOptions<Batch>, 'alphaT' | 'point'>, s: ReverseState, t: number, w: ParamTree): ReverseState {
  const c = s.am ? lincombTree(1, s.am, -o.lr, s.aw) : tree.scale(s.aw, -o.lr); // c_t = ā_m − η ā_w
  const prod = mixedProducts(o.problem, w, o.lambda, o.trainBatches[t - 1], c, { w: t > 1, lambda: true });
  return {
    gSO: lincombTree(1, s.gSO, 1, prod.lambda!), // an axpby rather than an add: the same fused kernels as before
    aw: prod.hw ? tree.add(s.aw, prod.hw) : s.aw,
    am: o.momentum !== 0 ? tree.scale(c, o.momentum) : null,
    jvps: s.jvps + (t > 1 ? 2 : 1),
  };
}

/** g^SO backwards over t = T … 1 along `point(t)`; memory holds the adjoints and one point at a time. */
export function reverseHypergradient<Batch>(o: ReverseOptions<Batch>): ReverseResult {
  return tidy(() => {
    let s = reverseStart(o.lambda, o.alphaT);
    for (let t = o.trainBatches.length; t >= 1; t--) s = carry(s, (prev) => reverseStep(o, prev, t, o.point(t)), o.alphaT);
    return { gSO: s.gSO, jvps: s.jvps };
  });
}

/** DrMAD's point ŵ_{t−1} = (1 − (t−1)/T) w_0 + ((t−1)/T) w_T (a new tree). */
export function interpolate(w0: ParamTree, wT: ParamTree, t: number, T: number): ParamTree {
  const s = (t - 1) / T;
  return lincombTree(1 - s, w0, s, wT);
}
