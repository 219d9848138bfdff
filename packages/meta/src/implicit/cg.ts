/** @file ConjugateGradientIFT (Pedregosa, 2016): x ≈ (H + δI)⁻¹∇_wL_V by conjugate gradients on HVPs. */
/*
 * ConjugateGradientIFT (Pedregosa, 2016): solves (H + δI) x = ∇_w L_V by N conjugate-gradient iterations
 * (x_0 = 0, one HVP each) and uses x ≈ H⁻¹∇_w L_V in the implicit hypergradient. The damping δ ≥ 0 makes an
 * indefinite or singular H (unconverged or over-parameterised inner problems) solvable; δ = 0 is plain CG.
 */
import { tidy } from '@metagrad/tensor';
import { tree, type ParamTree } from '@metagrad/models';
import type { HypergradEstimator, HypergradInput } from '../hypergrad/types';
import { checkFinite, checkPositiveInt } from '../hypergrad/common';
import { carry } from '../core/loop';
import { implicitHypergradient, type ImplicitResult } from './common';
import { NonFiniteHypergradientError } from '../errors';

export interface ConjugateGradientOptions {
  /** N: CG iterations (HVPs per hypergradient). */
  iterations: number;
  /** δ ≥ 0 added to the Hessian's diagonal (default 0). */
  damping?: number;
  /** Stop early once ‖r‖ ≤ tolerance·‖b‖ (default 0: always run N iterations). */
  tolerance?: number;
}

/** ⟨a, b⟩ read back (CG's coefficients are host numbers). */
const dot = (a: ParamTree, b: ParamTree): Promise<number> => tree.dot(a, b).item();

export class ConjugateGradientIFT<B = unknown> implements HypergradEstimator<B> {
  readonly name = 'cg-ift';
  readonly iterations: number;
  readonly damping: number;
  readonly tolerance: number;

  constructor(options: ConjugateGradientOptions) {
    checkPositiveInt('ConjugateGradientIFT', 'iterations', options.iterations);
    const damping = options.damping ?? 0;
    checkFinite('ConjugateGradientIFT', 'damping', damping, (v) => v >= 0, 'a finite number ≥ 0');
    const tolerance = options.tolerance ?? 0;
    checkFinite('ConjugateGradientIFT', 'tolerance', tolerance, (v) => v >= 0, 'a finite number ≥ 0');
    this.iterations = options.iterations;
    this.damping = damping;
    this.tolerance = tolerance;
  }

  private requireFinite(value: number, what: string, iteration: number): void {
    if (!Number.isFinite(value)) {
      throw new NonFiniteHypergradientError(this.name, `${what} is ${value} at iteration ${iteration} of ${this.iterations} (damping = ${this.damping})`);
    }
  }

  /** With `input.intermediates`: `solution`, the CG iterate x ≈ (H + δI)⁻¹∇θL_V. Reads nothing but θ, λ and the two batches. */
  estimate<Θ extends ParamTree, Λ extends ParamTree>(input: HypergradInput<Θ, Λ, B>): Promise<ImplicitResult<Θ, Λ>> {
    return implicitHypergradient(input, async (hvp, b) => {
      // Solve (H + δI) x = b from x = 0: r = b − (H + δI)x, d the search direction.
      let x = tree.scale(b, 0);
      let r = b;
      let d = tree.clone(b);
      let rs = await dot(r, r);
      // NaN fails every comparison below, so without these checks CG would stop and return x = 0 (or the last
      // finite x): a finite but wrong hypergradient. The values are read back anyway; checking them is free.
      this.requireFinite(rs, 'r·r of the right-hand side ∇_w L_V', 0);
      const stop = this.tolerance * this.tolerance * rs;
      for (let k = 0; k < this.iterations && rs > stop && rs > 0; k++) {
        const ad = tidy(() => (this.damping ? tree.axpy(this.damping, d, hvp(d)) : hvp(d))); // (H + δI) d
        const curvature = await dot(d, ad);
        // Non-positive curvature: the (damped) Hessian is not positive definite along d; stop with the current x.
        if (!(curvature > 0)) {
          this.requireFinite(curvature, 'the curvature dᵀ(H + δI)d (a Hessian-vector product)', k + 1);
          break;
        }
        const a = rs / curvature;
        ({ x, r } = carry({ x, r, ad }, (s) => ({ x: tree.axpy(a, d, s.x), r: tree.axpy(-a, s.ad, s.r) }))); // x += a d, r −= a (H + δI) d
        const rs2 = await dot(r, r);
        this.requireFinite(rs2, 'the residual r·r', k + 1);
        d = carry(d, (dOld) => tree.axpy(rs2 / rs, dOld, r)); // d ← r + (r·r)′/(r·r) d
        rs = rs2;
      }
      return { x };
    });
  }
}
