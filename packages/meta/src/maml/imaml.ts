/** @file iMAML (Rajeswaran et al. 2019): proximal inner GD, then the implicit meta-gradient (I + H/λ)⁻¹∇J by conjugate gradients on HVPs. */
import { type Tensor, scope, tidy } from '@metagrad/tensor';
import { HvpOperator } from '@metagrad/autograd';
import { tree } from '@metagrad/models';
import { innerGd } from './maml';
import { checkPositive, checkPositiveInt, dotTrees, evalLoss, lossGradient, readLosses } from './inner';
import { asyncLearner } from './learner';
import { carryAsync } from '../core/loop';
import { type MetaLearner, newMetaStats } from './types';

export interface ImamlOptions {
  /** Proximal strength λ of L(u) + λ/2‖u − θ‖². */
  lambda: number;
  /** Conjugate-gradient iterations for (I + H/λ)x = ∇J. */
  cgSteps: number;
  /** Inner GD steps on the proximal loss (default 1). */
  steps?: number;
  /** Inner step size (default 0.01). */
  innerLr?: number;
  /** CG stops early when ‖r‖² falls below this (default 1e-12). */
  cgTol?: number;
}

/**
 * Inner: u ≈ argmin L(u) + λ/2‖u − θ‖² by `steps` GD steps from θ. Outer: at that optimum du/dθ = (I + H(u)/λ)⁻¹
 * with H the Hessian of the unregularised support loss, so dJ/dθ = (I + H/λ)⁻¹∇J(u), solved by CG from x = 0 with
 * one reusable HvpOperator (the gradient graph at u is built once and serves every CG iteration).
 */
export function iMAML(options: ImamlOptions): MetaLearner {
  const steps = options.steps ?? 1;
  const innerLr = options.innerLr ?? 0.01;
  const cgTol = options.cgTol ?? 1e-12;
  checkPositive('iMAML', 'lambda', options.lambda);
  checkPositiveInt('iMAML', 'cgSteps', options.cgSteps);
  checkPositiveInt('iMAML', 'steps', steps);
  checkPositive('iMAML', 'innerLr', innerLr);
  const { lambda, cgSteps } = options;
  return asyncLearner('iMAML', (problem, theta, task, intermediates) =>
    scope(async () => {
      type P = typeof theta;
      const stats = newMetaStats();
      const { adapted: u, losses } = innerGd(problem, theta, task, { steps, innerLr }, lambda, stats, intermediates);
      // A v = (I + H/λ) v, one HVP on the gradient graph at u, built once (and freed with this scope).
      const op = new HvpOperator((...ls: Tensor[]) => problem.innerLoss(tree.fromLeaves(u, ls), task), tree.leaves(u));
      const A = (v: P): P => {
        stats.hvps++;
        return tidy(() => tree.axpy(1 / lambda, tree.fromLeaves(v, op.apply(tree.leaves(v))), v));
      };
      // CG on A x = ∇J(u) from x = 0, so r_0 = p_0 = ∇J; each half-iteration a carry, so old iterates go as soon as
      // their successors exist.
      const g = lossGradient((q: P) => problem.outerLoss(q, task), u);
      let cg = { x: tree.scale(g, 0), r: g, p: tree.clone(g), rs: await dotTrees(g, g) };
      for (let k = 0; k < cgSteps && cg.rs > cgTol; k++) {
        cg = await carryAsync(cg, async ({ x, r, p, rs }) => {
          const Ap = A(p);
          const alpha = rs / (await dotTrees(p, Ap));
          return { x: tree.axpy(alpha, p, x), r: tree.axpy(-alpha, Ap, r), p, rs }; // x += αp, r −= αAp
        });
        cg = await carryAsync(cg, async ({ x, r, p, rs }) => {
          const rsNew = await dotTrees(r, r);
          return { x, r, p: tree.axpy(rsNew / rs, p, r), rs: rsNew }; // p = r + (‖r‖²/‖r_old‖²) p
        });
      }
      const outerLoss = await evalLoss((q: P) => problem.outerLoss(q, task), u);
      const innerLosses = intermediates ? await readLosses(losses) : undefined;
      return { gradient: cg.x, outerLoss, stats, ...(innerLosses ? { adapted: u, innerLosses } : {}) };
    }),
  );
}
