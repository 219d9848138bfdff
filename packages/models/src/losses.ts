/**
 * @file Losses for the models: re-exports autograd's crossEntropy / softCrossEntropy / mse (one kernel path each)
 * and adds the per-example and NLL forms the meta-learners use, composed from the same differentiable ops.
 */
import { type Reduction, crossEntropy, gather, mean, mse, mul, neg, reshape, sum } from '@metagrad/autograd';
import * as raw from '@metagrad/tensor/raw';
import { DTypeError, InvalidArgumentError, ShapeError, type Tensor } from '@metagrad/tensor';

export { crossEntropy, softCrossEntropy, mse, type Reduction } from '@metagrad/autograd';

/** Softmax cross-entropy per example: logits [B, K], i32 labels [B] → [B] (the input of Meta-Weight-Net, etc.). */
export const crossEntropyPerExample = (logits: Tensor, labels: Tensor): Tensor => crossEntropy(logits, labels, 'none');

/** Mean softmax cross-entropy. */
export const crossEntropyMean = (logits: Tensor, labels: Tensor): Tensor => crossEntropy(logits, labels, 'mean');

/** Negative log-likelihood of log-probabilities [B, K] at i32 labels [B] (torch.nn.functional.nll_loss). */
export function nll(logProbs: Tensor, labels: Tensor, reduction: Reduction = 'mean'): Tensor {
  raw.checkTensors('nll', { logProbs, labels });
  if (logProbs.rank !== 2 || labels.rank !== 1 || labels.shape[0] !== logProbs.shape[0]) {
    throw new ShapeError(`nll: log-probabilities [${logProbs.shape.join(', ')}] need labels [${logProbs.shape[0]}], got [${labels.shape.join(', ')}]`);
  }
  if (labels.dtype !== 'i32') throw new DTypeError(`nll: labels must be i32 class indices, got ${labels.dtype} [${labels.shape.join(', ')}]`);
  if (!['mean', 'sum', 'none'].includes(reduction)) throw new InvalidArgumentError(`nll: reduction must be 'mean', 'sum' or 'none', got ${String(reduction)}`);
  return raw.tidy(() => {
    const picked = neg(reshape(gather(logProbs, 1, raw.reshape(labels, [labels.shape[0], 1])), [labels.shape[0]]));
    if (reduction === 'none') return picked;
    return reduction === 'sum' ? sum(picked) : mean(picked);
  });
}

/** Σᵢ wᵢ·ℓᵢ / N for per-example losses ℓ [N] and weights [N] or [N, 1] (Meta-Weight-Net's weighted training loss). */
export function weightedMean(perExample: Tensor, weights: Tensor): Tensor {
  raw.checkTensors('weightedMean', { perExample, weights });
  if (perExample.rank !== 1 || weights.size !== perExample.shape[0]) {
    throw new ShapeError(`weightedMean: losses [${perExample.shape.join(', ')}] and weights [${weights.shape.join(', ')}] must hold N values each`);
  }
  return raw.tidy(() => mean(mul(perExample, reshape(weights, perExample.shape))));
}

/** Mean squared error over all elements (alias kept next to the others for discoverability). */
export const mseMean = (prediction: Tensor, target: Tensor): Tensor => mse(prediction, target, 'mean');

/** Fraction of rows whose argmax equals the label (host number; not differentiable). */
export async function accuracy(logits: Tensor, labels: Tensor): Promise<number> {
  raw.checkTensors('accuracy', { logits, labels });
  if (logits.rank !== 2 || labels.shape[0] !== logits.shape[0]) {
    throw new ShapeError(`accuracy: logits [${logits.shape.join(', ')}] and labels [${labels.shape.join(', ')}] disagree`);
  }
  const predicted = raw.argmax(logits, 1);
  const [p, l] = await Promise.all([predicted.toArray(), labels.toArray()]);
  predicted.dispose();
  let correct = 0;
  for (let i = 0; i < p.length; i++) if (p[i] === l[i]) correct++;
  return correct / p.length;
}
