/** @file Turns an estimator's tensors into a HypergradResult: reads the validation loss (which also syncs, so `ms` is honest). */
import { dispose, type Tensor } from '@metagrad/tensor';
import type { ParamTree } from '@metagrad/models';
import type { HypergradResult, HypergradStats, HypergradTensors } from './types';

export async function finishResult<Λ extends ParamTree>(hypergrad: Λ, loss: Tensor, stats: HypergradStats, t0: number): Promise<HypergradResult<Λ>> {
  return readEstimate({ hypergrad, valLoss: loss, stats }, t0);
}

/** The tensors' result with its validation loss read back: what `estimate` returns for `estimateTensors`' `T`. */
export type ReadEstimate<T extends HypergradTensors<ParamTree>> = Omit<T, 'valLoss'> & { valLoss: number };

/**
 * `estimate` from `estimateTensors`: runs the core, then reads its validation loss. Everything else (the
 * hypergradient, any intermediates) passes through to the caller; on a failed read it is all disposed.
 */
export async function readEstimate<T extends HypergradTensors<ParamTree>>(out: T, t0: number): Promise<ReadEstimate<T>> {
  const { valLoss: loss, ...rest } = out;
  try {
    const valLoss = await loss.item();
    return { ...rest, valLoss, stats: { ...out.stats, ms: performance.now() - t0 } };
  } catch (error) {
    dispose(rest);
    throw error;
  } finally {
    loss.dispose();
  }
}
