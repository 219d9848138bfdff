/** @file LinearEstimation's backward pass: DrMAD reverse steps with the distilled point, batch and sample (v_s, g^SO_s) per horizon. */
/*
 * The backward pass of LinearEstimation (Algorithm 4): DrMAD's reverse steps along ŵ_{t−1} (eq. 16) with, at
 * each horizon s = T − t + 1, the distilled point w*_s and batch D*_s built backwards (eq. 17, 18) and the sample
 * v_s = −η ∂_λ⟨α_T, ∇_wL_T(w*_s, λ; D*_s)⟩ paired with the partial second-order term g^SO_s.
 */
import { mulScalar, reshape } from '@metagrad/autograd';
import { tidy, type Tensor } from '@metagrad/tensor';
import { concat } from '@metagrad/tensor/raw';
import { tree, type ParamTree, type Rng } from '@metagrad/models';
import type { BilevelProblem } from '../hypergrad/types';
import { carry } from '../core/loop';
import { interpolate, lincombTree, mixedProducts, reverseStart, reverseStep, MissingBatchOpsError, type BatchOps, type ReverseState } from '../core';
import { distillBatch } from './distilled-batch';
import { reverseMix } from './weights';

export interface DistilledReverseInput<Batch> {
  problem: BilevelProblem<ParamTree, ParamTree, Batch>;
  lambda: ParamTree;
  w0: ParamTree;
  wT: ParamTree;
  /** α_T = ∇_wL_V(w_T). */
  alphaT: ParamTree;
  trainBatches: readonly Batch[];
  lr: number;
  /** μ in the backward Jacobians (0 holds the momentum buffer constant). */
  momentum: number;
  gamma: number;
  batchOps?: BatchOps<Batch>;
  rng: Rng;
}

interface FitState<Batch> {
  rev: ReverseState;
  wStar: ParamTree | null;
  dStar: Batch | null;
  /** ‖v_s‖²/η² and v_s·g^SO_s per horizon s so far, as [1] device scalars. */
  norms: Tensor[];
  dots: Tensor[];
}

/** The samples of s = 1 … T as two [T] tensors (read once by the caller) and the JVPs spent: 2T − 1 + T. */
export function distilledReverse<Batch>(o: DistilledReverseInput<Batch>): {
  norms: Tensor;
  dots: Tensor;
  jvps: number;
} {
  const T = o.trainBatches.length;
  return tidy(() => {
    let s: FitState<Batch> = { rev: reverseStart(o.lambda, o.alphaT), wStar: null, dStar: null, norms: [], dots: [] };
    for (let t = T; t >= 1; t--) s = carry(s, (prev) => horizon(o, prev, t), [o.alphaT, o.trainBatches]);
    return { norms: concat(s.norms, 0), dots: concat(s.dots, 0), jvps: s.rev.jvps + T };
  });
}

/** Reverse step t, then horizon s = T − t + 1's distilled point, batch and sample. */
function horizon<Batch>(o: DistilledReverseInput<Batch>, prev: FitState<Batch>, t: number): FitState<Batch> {
  const T = o.trainBatches.length;
  const s = T - t + 1;
  const w = interpolate(o.w0, o.wT, t, T); // ŵ_{t−1} = ŵ_{T−s}
  const rev = reverseStep(o, prev.rev, t, w);
  const p = reverseMix(o.gamma, s);
  const wStar = s === 1 || !prev.wStar ? w : lincombTree(p, prev.wStar, 1 - p, w); // eq. 17
  const dStar = distilledBatchAt(o, prev.dStar, o.trainBatches[t - 1], s, p); // eq. 18
  const v = mixedProducts(o.problem, wStar, o.lambda, dStar, o.alphaT, { w: false, lambda: true }).lambda!;
  // v_s = −η ∂_λ⟨α_T, ∇L_T(w*_s)⟩: η enters the host's scalars, the sign here.
  return {
    rev,
    wStar,
    dStar,
    norms: [...prev.norms, reshape(tree.dot(v, v), [1])],
    dots: [...prev.dots, mulScalar(reshape(tree.dot(v, rev.gSO), [1]), -o.lr)],
  };
}

/** D*_s from D_{T−s+1} (eq. 18); at γ = 0 (p = 1) D* stays D_T. */
function distilledBatchAt<Batch>(o: DistilledReverseInput<Batch>, previous: Batch | null, batch: Batch, s: number, p: number): Batch {
  if (s === 1 || previous === null) return batch;
  if (p === 1 || previous === batch) return previous;
  if (!o.batchOps) throw new MissingBatchOpsError('linearEstimation: the training batches differ between steps; pass batchOps (eq. 18)');
  return distillBatch(o.batchOps, previous, batch, p, o.rng);
}
