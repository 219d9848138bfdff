/** @file Loss composites built from differentiable primitives (so every order of derivative comes free). */
import * as raw from '@metagrad/tensor/raw';
import { DTypeError, InvalidArgumentError, ShapeError, type Tensor } from '@metagrad/tensor';
import { mul, neg, square, sub } from './elementwise';
import { gather, reshape } from './movement';
import { logSoftmax, mean, sum } from './reduce';

export type Reduction = 'mean' | 'sum' | 'none';

/** Losses compare elementwise: a broadcast ([4, 1] against [4] → [4, 4]) is a silent bug, so shapes must be equal. */
function checkSameShape(op: string, an: string, a: Tensor, bn: string, b: Tensor): void {
  if (a.rank !== b.rank || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShapeError(
      `${op}: ${an} [${a.shape.join(', ')}] and ${bn} [${b.shape.join(', ')}] must have the same shape (no broadcasting; expand explicitly if you mean it)`,
    );
  }
}

function reduce(perSample: Tensor, reduction: Reduction): Tensor {
  if (!['mean', 'sum', 'none'].includes(reduction)) throw new InvalidArgumentError(`loss reduction must be 'mean', 'sum' or 'none', got ${String(reduction)}`);
  if (reduction === 'none') return perSample;
  return reduction === 'sum' ? sum(perSample) : mean(perSample);
}

/** Softmax cross-entropy of logits [B, K] against i32 class labels [B] (torch.nn.functional.cross_entropy). */
export function crossEntropy(logits: Tensor, labels: Tensor, reduction: Reduction = 'mean'): Tensor {
  raw.checkTensors('crossEntropy', { logits, labels });
  if (logits.rank !== 2 || labels.rank !== 1 || labels.shape[0] !== logits.shape[0]) {
    throw new ShapeError(`crossEntropy: logits [${logits.shape.join(', ')}] need labels [${logits.shape[0]}], got [${labels.shape.join(', ')}]`);
  }
  if (labels.dtype !== 'i32') throw new DTypeError(`crossEntropy: labels must be i32 class indices, got ${labels.dtype} [${labels.shape.join(', ')}]`);
  return raw.tidy(() => {
    const picked = gather(logSoftmax(logits, 1), 1, raw.reshape(labels, [labels.shape[0], 1]));
    return reduce(neg(reshape(picked, [labels.shape[0]])), reduction);
  });
}

/** Cross-entropy against soft targets (rows of probabilities) [B, K]. */
export function softCrossEntropy(logits: Tensor, targets: Tensor, reduction: Reduction = 'mean'): Tensor {
  raw.checkTensors('softCrossEntropy', { logits, targets });
  if (logits.rank !== 2) throw new ShapeError(`softCrossEntropy: logits must be [B, K], got [${logits.shape.join(', ')}]`);
  checkSameShape('softCrossEntropy', 'logits', logits, 'targets', targets);
  return raw.tidy(() => reduce(neg(sum(mul(targets, logSoftmax(logits, 1)), [1])), reduction));
}

/** Mean squared error (elementwise square of the difference, reduced). */
export function mse(prediction: Tensor, target: Tensor, reduction: Reduction = 'mean'): Tensor {
  raw.checkTensors('mse', { prediction, target });
  checkSameShape('mse', 'prediction', prediction, 'target', target);
  return raw.tidy(() => reduce(square(sub(prediction, target)), reduction));
}
