/**
 * @file The distilled batch of eq. 14: D*_t = SS(D*_{t−1}, p_t) ∪ SS(D_t, 1 − p_t), SS(D, p) a random subsample of
 * round(|D|·p) examples. To keep |D*| = |D_t| the second count is |D_t| − round(|D*_{t−1}|·p_t) (the paper rounds
 * both, which can grow or shrink the batch by one). Batches are opaque to the estimators; `BatchOps` says how to
 * count, subsample and join them. When every step uses the same batch object (full-batch inner steps) D* is that
 * batch and no ops are needed.
 */
import { concat, indexSelect } from '@metagrad/autograd';
import { InvalidArgumentError, tensor, type Tensor } from '@metagrad/tensor';
import { Rng } from '@metagrad/models';

export interface BatchOps<Batch> {
  size(batch: Batch): number;
  /** `count` distinct examples of `batch`, chosen by `rng` (a new batch the caller disposes). */
  subsample(batch: Batch, count: number, rng: Rng): Batch;
  /** The examples of both (a new batch the caller disposes). */
  union(a: Batch, b: Batch): Batch;
  dispose(batch: Batch): void;
}

export class MissingBatchOpsError extends Error {
  override name = 'MissingBatchOpsError';
}

/** How many examples eq. 14 takes from the previous distilled batch and from the new one. */
export function distilledCounts(previousSize: number, newSize: number, p: number): { fromPrevious: number; fromNew: number } {
  const fromPrevious = Math.min(previousSize, Math.round(previousSize * p));
  return { fromPrevious, fromNew: Math.max(0, Math.min(newSize, newSize - fromPrevious)) };
}

/** Eq. 14 with the given ops (a new batch, owned by the caller). */
export function distillBatch<Batch>(ops: BatchOps<Batch>, previous: Batch, next: Batch, p: number, rng: Rng): Batch {
  const { fromPrevious, fromNew } = distilledCounts(ops.size(previous), ops.size(next), p);
  if (fromPrevious === 0) return ops.subsample(next, fromNew, rng);
  if (fromNew === 0) return ops.subsample(previous, fromPrevious, rng);
  const a = ops.subsample(previous, fromPrevious, rng);
  const b = ops.subsample(next, fromNew, rng);
  try {
    return ops.union(a, b);
  } finally {
    ops.dispose(a);
    ops.dispose(b);
  }
}

/** Regression examples stacked as x [B, n, d], y [B, n, k] (B tasks, n examples each; subsampled along n). */
export interface RegressionBatch {
  x: Tensor;
  y: Tensor;
}

/** BatchOps for RegressionBatch: the same example positions are taken in every task of the meta-batch. */
export const regressionBatchOps: BatchOps<RegressionBatch> = {
  size: (b) => b.x.shape[1],
  subsample(b, count, rng) {
    const n = b.x.shape[1];
    if (!(Number.isInteger(count) && count >= 0 && count <= n)) throw new InvalidArgumentError(`regressionBatchOps.subsample: count ${count} of ${n} examples`);
    const perm = rng.permutation(n).slice(0, count);
    const index = tensor(Int32Array.from(perm), [count], 'i32', b.x.device);
    try {
      return { x: indexSelect(b.x, 1, index), y: indexSelect(b.y, 1, index) };
    } finally {
      index.dispose();
    }
  },
  union: (a, b) => ({ x: concat([a.x, b.x], 1), y: concat([a.y, b.y], 1) }),
  dispose(b) {
    b.x.dispose();
    b.y.dispose();
  },
};
