/** @file Loss composites built from differentiable primitives (so every order of derivative comes free). */
import * as raw from '@metagrad/tensor';
import { ShapeError, type Tensor } from '@metagrad/tensor';
import { mul, neg, square, sub } from './elementwise';
import { gather, reshape } from './movement';
import { logSoftmax, mean, sum } from './reduce';

export type Reduction = 'mean' | 'sum' | 'none';

function reduce(perSample: Tensor, reduction: Reduction): Tensor {
  if (reduction === 'none') return perSample;
  return reduction === 'sum' ? sum(perSample) : mean(perSample);
}

/** Softmax cross-entropy of logits [B, K] against i32 class labels [B] (torch.nn.functional.cross_entropy). */
export function crossEntropy(logits: Tensor, labels: Tensor, reduction: Reduction = 'mean'): Tensor {
  if (logits.rank !== 2 || labels.rank !== 1 || labels.shape[0] !== logits.shape[0]) {
    throw new ShapeError(`crossEntropy: logits [${logits.shape.join(', ')}] need labels [${logits.shape[0]}], got [${labels.shape.join(', ')}]`);
  }
  return raw.tidy(() => {
    const picked = gather(logSoftmax(logits, 1), 1, raw.reshape(labels, [labels.shape[0], 1]));
    return reduce(neg(reshape(picked, [labels.shape[0]])), reduction);
  });
}

/** Cross-entropy against soft targets (rows of probabilities) [B, K]. */
export function softCrossEntropy(logits: Tensor, targets: Tensor, reduction: Reduction = 'mean'): Tensor {
  return raw.tidy(() => reduce(neg(sum(mul(targets, logSoftmax(logits, 1)), [1])), reduction));
}

/** Mean squared error (elementwise square of the difference, reduced). */
export function mse(prediction: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  return raw.tidy(() => reduce(square(sub(prediction, target)), reduction));
}
