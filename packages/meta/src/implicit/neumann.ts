/** @file NeumannIFT (Lorraine et al., 2020): H⁻¹v ≈ α Σ_{j=0}^{N} (I − αH)^j v. */
/*
 * NeumannIFT (Lorraine et al., 2020): H⁻¹v ≈ α Σ_{j=0}^{N} (I − αH)^j v.
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
import { tree, type ParamTree } from '@metagrad/models';
import { NeumannDivergenceError, NonFiniteHypergradientError } from '../errors';
import type { HypergradEstimator, HypergradInput } from '../hypergrad/types';
import { checkFinite, checkPositiveInt } from '../hypergrad/common';
import { carry } from '../core/loop';
import { implicitHypergradient, type ImplicitResult } from './common';

export interface NeumannOptions {
  /** N: terms of the series after the first (HVPs per hypergradient). */
  iterations: number;
  /** α: the series' step size; defaults to the input's innerLr. */
  alpha?: number;
}

export class NeumannIFT<B = unknown> implements HypergradEstimator<B> {
  readonly name = 'neumann-ift';
  readonly iterations: number;
  readonly alpha: number | undefined;

  constructor(options: NeumannOptions) {
    checkPositiveInt('NeumannIFT', 'iterations', options.iterations);
    if (options.alpha !== undefined) checkFinite('NeumannIFT', 'alpha', options.alpha, (v) => v > 0, 'a finite number > 0');
    this.iterations = options.iterations;
    this.alpha = options.alpha;
  }

  /** With `input.intermediates`: `series` (p_0 … p_N, Lorraine et al.'s p after each term) and `solution` (α p_N). */
  estimate<Θ extends ParamTree, Λ extends ParamTree>(input: HypergradInput<Θ, Λ, B>): Promise<ImplicitResult<Θ, Λ>> {
    const alpha = this.alpha ?? input.innerLr ?? NaN;
    checkFinite('NeumannIFT', 'alpha (or innerLr)', alpha, (v) => v > 0, 'a finite number > 0');
    return implicitHypergradient(input, async (hvp, gradV) => {
      // Lorraine et al., Algorithm 3: v ← ∇θL_V, p ← v; N times: v ← v − α H v, p ← p + v. The norms ‖v_j‖² stay on
      // the device and are read back with the validation loss (no extra sync); `series` keeps every p when asked.
      const keepSeries = input.intermediates === true;
      let s = { v: gradV, p: gradV, norms: [tree.dot(gradV, gradV)], series: keepSeries ? [gradV] : [] };
      for (let j = 0; j < this.iterations; j++) {
        s = carry(s, ({ v, p, norms, series }) => {
          const next = tree.axpy(-alpha, hvp(v), v);
          const sum = tree.add(p, next);
          return {
            v: next,
            p: sum,
            norms: [...norms, tree.dot(next, next)],
            series: keepSeries ? [...series, sum] : series,
          };
        });
      }
      return {
        x: tree.scale(s.p, alpha),
        series: keepSeries ? s.series : undefined,
        watch: s.norms,
        check: (values) => checkSeries(alpha, values),
      };
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
