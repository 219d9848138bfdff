/**
 * @file The Meta-Weight-Net bilevel problem (Shu et al. 2019): θ is a classifier, λ a small net v(ℓ; λ) that
 * weights each training example by its loss; L_T = mean_i v(ℓ_i)·ℓ_i on noisy data (or Σ_i v_i/Σ_j v_j · ℓ_i
 * with `normalizeWeights`), L_V = plain cross-entropy on a clean meta set (no direct λ term). With a batched
 * classifier it offers `batchedTrainLoss`, so EvoGrad evaluates its K copies in one forward.
 */
import type { Tensor } from '@metagrad/tensor';
import * as raw from '@metagrad/tensor/raw';
import { add, crossEntropy, detach, div, logSoftmax, mean, mul, neg, reshape, sum } from '@metagrad/autograd';
import type { ParamTree } from '@metagrad/models';
import type { BilevelProblem } from './types';

export interface ClassificationBatch {
  x: Tensor;
  /** i32 class labels [N]. */
  y: Tensor;
}

export interface MetaWeightNetProblemOptions<Θ extends ParamTree = ParamTree, Λ extends ParamTree = ParamTree> {
  /** θ, x [N, …] → logits [N, C]. */
  classifier(theta: Θ, x: Tensor): Tensor;
  /** Optional: K stacked θ copies (leaves [K, …]), x → logits [K, N, C]. */
  batchedClassifier?(thetas: Θ, x: Tensor): Tensor;
  /** λ, per-example losses [M, 1] → weights [M, 1] (e.g. @metagrad/models' metaWeightNet apply). */
  weightNet(lambda: Λ, losses: Tensor): Tensor;
  /**
   * Feed the weight net the losses as constants (default true, as both the Meta-Weight-Net and the EvoGrad
   * authors' code do with `cost_v.data`): ∇θL_T then ignores v's dependence on ℓ. false keeps that path.
   */
  detachWeightInput?: boolean;
  /**
   * Normalise the weights per batch, L_T = Σ_i v_i ℓ_i / Σ_j v_j (left as v when Σ_j v_j = 0), as the authors' code
   * does for T1–T2 and EvoGrad alike. Default false in the library: L_T = mean_i v_i ℓ_i.
   */
  normalizeWeights?: boolean;
}

export function metaWeightNetProblem<Θ extends ParamTree, Λ extends ParamTree>(
  options: MetaWeightNetProblemOptions<Θ, Λ>,
): BilevelProblem<Θ, Λ, ClassificationBatch> {
  const detachInput = options.detachWeightInput ?? true;
  const normalize = options.normalizeWeights ?? false;
  /** The weighted training loss from per-example losses ℓ of shape [N] (→ []) or [K, N] (→ [K], per copy). */
  const weighted = (lambda: Λ, losses: Tensor): Tensor => {
    const input = reshape(detachInput ? detach(losses) : losses, [losses.size, 1]);
    const v = reshape(options.weightNet(lambda, input), losses.shape);
    const axis = losses.rank - 1;
    if (!normalize) return losses.rank === 1 ? mean(mul(v, losses)) : mean(mul(v, losses), [axis]);
    const total = sum(v, [axis], true); // Σ_j v_j per batch (per copy)
    const isZero = raw.cast(raw.eq(total, raw.zeros(total.shape, 'f32', total.device)), 'f32'); // the authors' `if norm_c != 0`
    return sum(mul(div(v, add(total, isZero)), losses), [axis]);
  };
  const problem: BilevelProblem<Θ, Λ, ClassificationBatch> = {
    trainLoss(theta, lambda, batch) {
      return raw.tidy(() => weighted(lambda, crossEntropy(options.classifier(theta, batch.x), batch.y, 'none')));
    },
    valLoss(theta, _lambda, batch) {
      return raw.tidy(() => crossEntropy(options.classifier(theta, batch.x), batch.y));
    },
  };
  const batchedClassifier = options.batchedClassifier;
  if (batchedClassifier) {
    problem.batchedTrainLoss = (thetas, lambda, batch) =>
      raw.tidy(() => {
        const logits = batchedClassifier(thetas, batch.x); // [K, N, C]
        const [, , C] = logits.shape;
        const targets = raw.oneHot(batch.y, C); // f32 [N, C], broadcast over K
        const perExample = neg(sum(mul(logSoftmax(logits, 2), targets), [2])); // [K, N]
        return weighted(lambda, perExample);
      });
  }
  return problem;
}
