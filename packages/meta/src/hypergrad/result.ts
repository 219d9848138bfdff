/** @file `estimate` from `estimateTensors`: the core in a scope, its validation loss read back (which also syncs, so `ms` is honest). */
import { scope } from '@metagrad/tensor';
import type { ParamTree } from '@metagrad/models';
import type { HypergradTensors } from './types';

/** The tensors' result with its validation loss read back: what `estimate` returns for `estimateTensors`' `T`. */
export type ReadEstimate<T extends HypergradTensors<ParamTree>> = Omit<T, 'valLoss'> & { valLoss: number };

/**
 * Runs the readback-free core in a `scope` and reads its validation loss: the hypergradient and any intermediates
 * pass through to the caller, the loss (and everything on a failed read) is freed with the scope.
 */
export function readEstimate<T extends HypergradTensors<ParamTree>>(core: () => T, t0: number): Promise<ReadEstimate<T>> {
  return scope(async () => {
    const { valLoss, ...rest } = core();
    return { ...rest, valLoss: await valLoss.item(), stats: { ...rest.stats, ms: performance.now() - t0 } };
  });
}
