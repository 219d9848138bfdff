/**
 * @file NeumannIFT (Lorraine et al., 2020): H⁻¹v ≈ α Σ_{j=0}^{N} (I − αH)^j v.
 *
 * Scaling convention: Σ_{j≥0} (I − αH)^j = (αH)⁻¹, so the bare series approximates H⁻¹/α, not H⁻¹.
 * Lorraine et al.'s algorithm returns the bare series and lets the outer learning rate absorb 1/α; this
 * implementation multiplies by α so that the result approximates the implicit hypergradient itself and
 * converges to it as N → ∞ (for 0 < α < 2/λ_max(H), H positive definite). N iterations cost N HVPs.
 */
import { disposeTree, type ParamTree } from '@metagrad/models';
import type { HypergradEstimator, HypergradInput, HypergradResult } from '../hypergrad/types';
import { checkFinite, checkPositiveInt } from '../hypergrad/common';
import { lincombTree } from '../episodic/products';
import { implicitHypergradient } from './common';

export interface NeumannOptions {
  /** N: terms of the series after the first (HVPs per hypergradient). */
  iterations: number;
  /** α: the series' step size; defaults to the input's innerLr. */
  alpha?: number;
}

export class NeumannIFT<Batch> implements HypergradEstimator<Batch> {
  readonly name = 'neumann-ift';
  readonly iterations: number;
  readonly alpha: number | undefined;

  constructor(options: NeumannOptions) {
    checkPositiveInt('NeumannIFT', 'iterations', options.iterations);
    if (options.alpha !== undefined) checkFinite('NeumannIFT', 'alpha', options.alpha, (v) => v > 0, 'a finite number > 0');
    this.iterations = options.iterations;
    this.alpha = options.alpha;
  }

  estimate(input: HypergradInput<Batch>): Promise<HypergradResult> {
    const alpha = this.alpha ?? input.innerLr;
    checkFinite('NeumannIFT', 'alpha (or innerLr)', alpha, (v) => v > 0, 'a finite number > 0');
    return implicitHypergradient(input, async (hvp, rhs) => {
      let v: ParamTree = lincombTree(1, rhs, 0, rhs);
      let p: ParamTree = lincombTree(1, rhs, 0, rhs);
      try {
        for (let j = 0; j < this.iterations; j++) {
          const hv = hvp.apply(v);
          const v2 = lincombTree(1, v, -alpha, hv);
          disposeTree(hv);
          disposeTree(v);
          v = v2;
          const p2 = lincombTree(1, p, 1, v);
          disposeTree(p);
          p = p2;
        }
        return lincombTree(alpha, p, 0, p);
      } finally {
        disposeTree(v);
        disposeTree(p);
      }
    });
  }
}
