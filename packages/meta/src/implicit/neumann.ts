/**
 * @file NeumannIFT (Lorraine et al., 2020): H⁻¹v ≈ α Σ_{j=0}^{N} (I − αH)^j v.
 *
 * Scaling convention: Σ_{j≥0} (I − αH)^j = (αH)⁻¹, so the bare series approximates H⁻¹/α, not H⁻¹.
 * Lorraine et al.'s algorithm returns the bare series and lets the outer learning rate absorb 1/α; this
 * implementation multiplies by α so that the result approximates the implicit hypergradient itself and
 * converges to it as N → ∞ (for 0 < α < 2/λ_max(H), H positive definite). N iterations cost N HVPs.
 *
 * Divergence is not silent: each term's norm is computed on the device and read back with the validation loss
 * (no extra readback); a non-finite term, or one more than twice as long as the first, throws
 * NeumannDivergenceError with α, the term and every norm.
 */
import { noGrad } from '@metagrad/autograd';
import type { Tensor } from '@metagrad/tensor';
import { disposeTree, dotTree, type ParamTree } from '@metagrad/models';
import { NeumannDivergenceError, NonFiniteHypergradientError } from '../errors';
import type { HypergradEstimator, HypergradInput, HypergradResult } from '../hypergrad/types';
import { checkFinite, checkPositiveInt } from '../hypergrad/common';
import { lincombTree } from '../episodic/products';
import { type SolveResult, implicitHypergradient } from './common';

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
    return implicitHypergradient(input, async (hvp, rhs): Promise<SolveResult> => {
      let v: ParamTree = lincombTree(1, rhs, 0, rhs);
      let p: ParamTree = lincombTree(1, rhs, 0, rhs);
      // ‖v_j‖² of every term, left on the device and read back with the validation loss: no extra sync.
      const squaredNorms: Tensor[] = [noGrad(() => dotTree(v, v))];
      let returned = false;
      try {
        for (let j = 0; j < this.iterations; j++) {
          const hv = hvp.apply(v);
          const v2 = lincombTree(1, v, -alpha, hv);
          disposeTree(hv);
          disposeTree(v);
          v = v2;
          squaredNorms.push(noGrad(() => dotTree(v, v)));
          const p2 = lincombTree(1, p, 1, v);
          disposeTree(p);
          p = p2;
        }
        returned = true;
        return { x: lincombTree(alpha, p, 0, p), watch: squaredNorms, check: (values) => checkSeries(alpha, values) };
      } finally {
        if (!returned) disposeTree(squaredNorms);
        disposeTree(v);
        disposeTree(p);
      }
    });
  }
}

/**
 * For H positive definite and 0 < α < 2/λ_max every term is no longer than the first; a term that is not finite,
 * or longer than DIVERGENCE_GROWTH times the first, means the series diverges (α too large, or H indefinite).
 */
const DIVERGENCE_GROWTH = 2;

function checkSeries(alpha: number, squaredNorms: readonly number[]): void {
  const norms = squaredNorms.map(Math.sqrt);
  if (!Number.isFinite(norms[0])) {
    throw new NonFiniteHypergradientError('neumann-ift', `the validation gradient ∇_w L_V has norm ${norms[0]} (not finite)`);
  }
  const limit = DIVERGENCE_GROWTH * norms[0];
  const iteration = norms.findIndex((norm) => !(norm <= limit));
  if (iteration > 0) throw new NeumannDivergenceError(alpha, iteration, norms);
}
