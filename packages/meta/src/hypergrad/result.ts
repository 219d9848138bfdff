/** @file Turns an estimator's tensors into a HypergradResult: reads the validation loss (which also syncs, so `ms` is honest). */
import type { Tensor } from '@metagrad/tensor';
import type { ParamTree } from '@metagrad/models';
import type { HypergradResult, HypergradStats, HypergradTensors } from './types';

export async function finishResult(hypergrad: ParamTree, loss: Tensor, stats: HypergradStats, t0: number): Promise<HypergradResult> {
  try {
    const valLoss = await loss.item();
    return { hypergrad, valLoss, stats: { ...stats, ms: performance.now() - t0 } };
  } finally {
    loss.dispose();
  }
}

/** `estimate` from `estimateTensors`: runs the core, then reads its validation loss. */
export async function readEstimate(out: HypergradTensors, t0: number): Promise<HypergradResult> {
  return finishResult(out.hypergrad, out.valLoss, out.stats, t0);
}
