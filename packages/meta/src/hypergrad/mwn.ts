/**
 * @file The Meta-Weight-Net bilevel problem (Shu et al. 2019): θ is a classifier, λ a small net v(ℓ; λ) that
 * weights each training example by its (detached) loss; L_T = mean_i v(ℓ_i)·ℓ_i on noisy data, L_V = plain
 * cross-entropy on a clean meta set (no direct λ term). With a batched classifier it offers `batchedTrainLoss`,
 * so EvoGrad evaluates its K copies in one forward.
 */
import type { Tensor } from '@metagrad/tensor';
import * as raw from '@metagrad/tensor';
import { crossEntropy, detach, logSoftmax, mean, mul, neg, reshape, sum } from '@metagrad/autograd';
import type { ParamTree } from '@metagrad/models';
import type { BilevelProblem } from './types';

export interface ClassificationBatch {
  x: Tensor;
  /** i32 class labels [N]. */
  y: Tensor;
}

export interface MetaWeightNetProblemOptions {
  /** θ, x [N, …] → logits [N, C]. */
  classifier(theta: ParamTree, x: Tensor): Tensor;
  /** Optional: K stacked θ copies (leaves [K, …]), x → logits [K, N, C]. */
  batchedClassifier?(thetas: ParamTree, x: Tensor): Tensor;
  /** λ, per-example losses [M, 1] → weights [M, 1] (e.g. @metagrad/models' metaWeightNet apply). */
  weightNet(lambda: ParamTree, losses: Tensor): Tensor;
}

/** Weighted training loss from per-example losses [N] (constants for the weight net's input, as MWN's `.data`). */
function weighted(weightNet: MetaWeightNetProblemOptions['weightNet'], lambda: ParamTree, perExample: Tensor): Tensor {
  const n = perExample.size;
  const input = reshape(detach(perExample), [n, 1]);
  const v = reshape(weightNet(lambda, input), perExample.shape);
  return mul(v, perExample);
}

export function metaWeightNetProblem(options: MetaWeightNetProblemOptions): BilevelProblem<ClassificationBatch> {
  const problem: BilevelProblem<ClassificationBatch> = {
    trainLoss(theta, lambda, batch) {
      return raw.tidy(() => mean(weighted(options.weightNet, lambda, crossEntropy(options.classifier(theta, batch.x), batch.y, 'none'))));
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
        return mean(weighted(options.weightNet, lambda, perExample), [1]);
      });
  }
  return problem;
}
