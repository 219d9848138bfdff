/** @file Online reverse mode (truncated RMD over the last K stored steps): the exact online reference, not a cheap method. */
/*
 * Online reverse mode (truncated RMD): after inner step t, the exact hypergradient of L_V(w_t, λ) through
 * the stored steps max(1, t − K + 1) … t (Algorithm 1 over a sliding window, through momentum; the state entering
 * the window is held constant). With K ≥ t it is the exact online hypergradient that 1-step (K = 1) and
 * HyperDistill approximate, at 2K − 1 JVPs per step and K stored iterates: the reference, not a cheap method.
 */
import { InvalidArgumentError, dispose } from '@metagrad/tensor';
import { tree, type ParamTree } from '@metagrad/models';
import type { HyperMethod } from '../core';
import { carry, keepAll } from '../core/loop';
import { ReverseHG } from './reverse-hg';

export interface OnlineReverseOptions {
  /** Steps K to reverse through (the whole inner optimisation so far when absent). */
  horizon?: number;
}

export function onlineReverseMethod<Batch>(options: OnlineReverseOptions = {}, name?: string): HyperMethod<Batch> {
  const K = options.horizon ?? Infinity;
  if (!(K === Infinity || (Number.isInteger(K) && K >= 1))) {
    throw new InvalidArgumentError(`onlineReverseMethod: horizon must be an integer ≥ 1, got ${options.horizon}`);
  }
  const est = new ReverseHG<Batch>();
  /** w_{t−K} … w_{t−1}: the points the window's steps start from (copies kept across steps). */
  let window: ParamTree[] = [];
  const clear = (): void => {
    dispose(window);
    window = [];
  };
  return {
    name: name ?? (K === Infinity ? 'RMD online' : `RMD online (K=${K})`),
    async begin() {
      clear();
    },
    async step(ctx, s) {
      if (s.t === 1) clear();
      window = keepAll(carry(window, (w) => [...w, tree.clone(s.wPrev)].slice(-K)));
      const first = s.t - window.length;
      try {
        return await est.estimate({
          problem: ctx.problem,
          theta: s.w,
          initial: window[0],
          trajectory: window.slice(1),
          lambda: ctx.lambda,
          trainBatch: s.batch,
          trainBatches: ctx.trainBatches.slice(first, s.t),
          valBatch: ctx.valBatch,
          innerLr: ctx.optimiser.lr,
          momentum: ctx.optimiser.momentum,
        });
      } catch (error) {
        // The inner optimisation ends here: free the stored window now rather than at the next begin.
        clear();
        throw error;
      }
    },
    async end() {
      clear();
      return null;
    },
    dispose: clear,
  };
}
