/** @file Hypergradients checked finite on the readback that reads L_V, before anyone applies them to λ. */
/*
 * Finite checks that ride on readbacks the episodic estimators already make: a hypergradient's norm is read
 * with its validation loss (one readback), and a NaN/Inf one is a NonFiniteHypergradientError before anyone applies
 * it to λ.
 */
import { scope, type Tensor } from '@metagrad/tensor';
import type { ParamTree } from '@metagrad/models';
import type { HypergradResult, HypergradStats } from '../hypergrad/types';
import { readWithNorm } from '../hypergrad/readback';
import { NonFiniteHypergradientError } from '../errors';

/** A result whose ‖hypergrad‖ was read back (and found finite) with its validation loss. */
export interface CheckedHypergradResult extends HypergradResult {
  hypergradNorm: number;
}

/** Throws NonFiniteHypergradientError when ‖dL_V/dλ‖ is NaN/Inf (λ is then left for the caller not to update). */
export function checkHypergradNorm(estimator: string, hypergradNorm: number, valLoss: number, where: string): void {
  if (Number.isFinite(hypergradNorm)) return;
  const hint = Number.isFinite(valLoss) ? '' : ' (the validation loss is not finite either: the inner iterate w is probably NaN/Inf; lower the inner lr)';
  throw new NonFiniteHypergradientError(estimator, `‖dL_V/dλ‖ = ${hypergradNorm} ${where} (validation loss ${valLoss}); λ was not updated${hint}`);
}

/**
 * `estimate` around a readback-free core: runs `compute` in a scope, reads L_V and ‖hypergrad‖ in one readback and
 * refuses a non-finite norm. Only the hypergradient leaves the scope.
 */
export function checkedEstimate(
  estimator: string,
  t0: number,
  compute: () => { hypergrad: ParamTree; valLoss: Tensor; stats: HypergradStats },
): Promise<CheckedHypergradResult> {
  return scope(async () => {
    const { hypergrad, valLoss: loss, stats } = compute();
    const [valLoss, hypergradNorm] = await readWithNorm(loss, hypergrad);
    checkHypergradNorm(estimator, hypergradNorm, valLoss, 'from the estimate');
    return { hypergrad, valLoss, hypergradNorm, stats: { ...stats, ms: performance.now() - t0 } };
  });
}
