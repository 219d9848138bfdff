/** @file Batches as the episodic estimators see them: BatchOps (count, subsample, join) and the stacked regression batch of ANIL. */
/*
 * Batches are opaque to the episodic estimators; `BatchOps` says how to count, subsample and join them (for
 * HyperDistill's distilled batch), and `regressionBatchOps` does it for the stacked regression tasks of ANIL.
 * A batch's tensors must be reachable through plain objects and arrays, so scopes can see which ones it holds.
 */
import { concat, indexSelect } from '@metagrad/autograd';
import { InvalidArgumentError, dispose, tensor, tidy, type Tensor } from '@metagrad/tensor';
import type { Rng } from '@metagrad/models';

export interface BatchOps<Batch> {
  size(batch: Batch): number;
  /** `count` distinct examples of `batch`, chosen by `rng` (a new batch). */
  subsample(batch: Batch, count: number, rng: Rng): Batch;
  /** The examples of both (a new batch). */
  union(a: Batch, b: Batch): Batch;
  /** Frees a batch made by the ops (for callers outside any scope). */
  dispose(batch: Batch): void;
}

export class MissingBatchOpsError extends Error {
  override name = 'MissingBatchOpsError';
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
    return tidy(() => {
      const index = tensor(Int32Array.from(perm), [count], 'i32', b.x.device);
      return { x: indexSelect(b.x, 1, index), y: indexSelect(b.y, 1, index) };
    });
  },
  union: (a, b) => ({ x: concat([a.x, b.x], 1), y: concat([a.y, b.y], 1) }),
  dispose: (b) => dispose([b.x, b.y]),
};
