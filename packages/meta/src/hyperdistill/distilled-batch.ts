/** @file The distilled batch D*_t of eq. 14: proportional subsamples of D*_{t−1} and D_t joined. */
/*
 * The distilled batch of eq. 14: D*_t = SS(D*_{t−1}, p_t) ∪ SS(D_t, 1 − p_t), SS(D, p) a random subsample of
 * round(|D|·p) examples. To keep |D*| = |D_t| the second count is |D_t| − round(|D*_{t−1}|·p_t) (the paper rounds
 * both, which can grow or shrink the batch by one). When every step uses the same batch object (full-batch inner
 * steps) D* is that batch and no `BatchOps` are needed.
 */
import { tidy } from '@metagrad/tensor';
import type { Rng } from '@metagrad/models';
import type { BatchOps } from '../core/batches';

/** How many examples eq. 14 takes from the previous distilled batch and from the new one. */
export function distilledCounts(previousSize: number, newSize: number, p: number): { fromPrevious: number; fromNew: number } {
  const fromPrevious = Math.min(previousSize, Math.round(previousSize * p));
  return { fromPrevious, fromNew: Math.max(0, Math.min(newSize, newSize - fromPrevious)) };
}

/** Eq. 14 with the given ops (a new batch; the two subsamples it joins are freed). */
export function distillBatch<Batch>(ops: BatchOps<Batch>, previous: Batch, next: Batch, p: number, rng: Rng): Batch {
  const { fromPrevious, fromNew } = distilledCounts(ops.size(previous), ops.size(next), p);
  return tidy(() => {
    if (fromPrevious === 0) return ops.subsample(next, fromNew, rng);
    if (fromNew === 0) return ops.subsample(previous, fromPrevious, rng);
    return ops.union(ops.subsample(previous, fromPrevious, rng), ops.subsample(next, fromNew, rng));
  });
}
