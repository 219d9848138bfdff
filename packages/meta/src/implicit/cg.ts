/**
 * @file ConjugateGradientIFT (Pedregosa, 2016): solves (H + δI) x = ∇_w L_V by N conjugate-gradient iterations
 * (x_0 = 0, one HVP each) and uses x ≈ H⁻¹∇_w L_V in the implicit hypergradient. The damping δ ≥ 0 makes an
 * indefinite or singular H (unconverged or over-parameterised inner problems) solvable; δ = 0 is plain CG.
 */
import { dotTree, disposeTree, type ParamTree } from '@metagrad/models';
import type { HypergradEstimator, HypergradInput, HypergradResult } from '../hypergrad/types';
import { checkFinite, checkPositiveInt } from '../hypergrad/common';
import { lincombTree } from '../episodic/products';
import { implicitHypergradient } from './common';
import { NonFiniteHypergradientError } from '../errors';

export interface ConjugateGradientOptions {
  /** N: CG iterations (HVPs per hypergradient). */
  iterations: number;
  /** δ ≥ 0 added to the Hessian's diagonal (default 0). */
  damping?: number;
  /** Stop early once ‖r‖ ≤ tolerance·‖b‖ (default 0: always run N iterations). */
  tolerance?: number;
}

async function dot(a: ParamTree, b: ParamTree): Promise<number> {
  const d = dotTree(a, b);
  try {
    return await d.item();
  } finally {
    d.dispose();
  }
}

export class ConjugateGradientIFT<Batch> implements HypergradEstimator<Batch> {
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

  estimate(input: HypergradInput<Batch>): Promise<HypergradResult> {
    return implicitHypergradient(input, async (hvp, b) => {
      let x: ParamTree = lincombTree(0, b, 0, b);
      let r: ParamTree = lincombTree(1, b, 0, b);
      let d: ParamTree = lincombTree(1, b, 0, b);
      let returned = false;
      try {
        let rs = await dot(r, r);
        // NaN fails every comparison below, so without these checks CG would stop and return x = 0 (or the last
        // finite x): a finite but wrong hypergradient. The values are read back anyway; checking them is free.
        this.requireFinite(rs, 'r·r of the right-hand side ∇_w L_V', 0);
        const stop = this.tolerance * this.tolerance * rs;
        for (let k = 0; k < this.iterations && rs > stop && rs > 0; k++) {
          const hd = hvp.apply(d);
          const ad = this.damping ? lincombTree(1, hd, this.damping, d) : hd;
          if (ad !== hd) disposeTree(hd);
          const curvature = await dot(d, ad);
          // Non-positive curvature: the (damped) Hessian is not positive definite along d; stop with the current x.
          if (!(curvature > 0)) {
            disposeTree(ad);
            this.requireFinite(curvature, 'the curvature dᵀ(H + δI)d (a Hessian-vector product)', k + 1);
            break;
          }
          const a = rs / curvature;
          const x2 = lincombTree(1, x, a, d);
          const r2 = lincombTree(1, r, -a, ad);
          disposeTree(ad);
          disposeTree(x);
          disposeTree(r);
          x = x2;
          r = r2;
          const rs2 = await dot(r, r);
          this.requireFinite(rs2, 'the residual r·r', k + 1);
          const d2 = lincombTree(1, r, rs2 / rs, d);
          disposeTree(d);
          d = d2;
          rs = rs2;
        }
        returned = true;
        return x;
      } finally {
        if (!returned) disposeTree(x);
        disposeTree(r);
        disposeTree(d);
      }
    });
  }
}
