/** @file iMAML (Rajeswaran et al. 2019): proximal inner GD, then the implicit meta-gradient (I + H/λ)⁻¹∇J by conjugate gradients on HVPs. */
import * as raw from '@metagrad/tensor';
import type { Tensor } from '@metagrad/tensor';
import { HvpOperator } from '@metagrad/autograd';
import { type ParamTree, fromLeaves, leaves } from '@metagrad/models';
import { innerGd } from './maml';
import { checkPositive, checkPositiveInt, cloneTree, disposeTree, dotTrees, evalLoss, lossGradient } from './inner';
import { type MetaGradient, type MetaLearner, type MetaProblem, newMetaStats } from './types';

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
  return {
    name: 'iMAML',
    async metaGradient<P extends ParamTree, D>(problem: MetaProblem<P, D>, theta: P, task: D): Promise<MetaGradient<P>> {
      const stats = newMetaStats();
      const u = innerGd(problem, theta, task, { steps, innerLr }, lambda, stats);
      let op: HvpOperator | undefined;
      const live = new Set<P>();
      const own = (t: P): P => (live.add(t), t);
      const drop = (...ts: P[]): void => ts.forEach((t) => (disposeTree(t), live.delete(t)));
      try {
        const g = own(lossGradient((p: P) => problem.outerLoss(p, task), u));
        op = new HvpOperator((...ls: Tensor[]) => problem.innerLoss(fromLeaves(u, ls), task), leaves(u));
        const A = (v: P): P => {
          stats.hvps++;
          const hv = op!.apply(leaves(v));
          const out = fromLeaves(v, leaves(v).map((vi, i) => {
            const s = raw.mulScalar(hv[i], 1 / lambda);
            const r = raw.add(vi, s);
            s.dispose();
            return r;
          }));
          hv.forEach((t) => t.dispose());
          return out;
        };
        const axpy = (a: number, x: P, y: P): P => {
          const xl = leaves(x);
          return fromLeaves(y, leaves(y).map((yi, i) => {
            const s = raw.mulScalar(xl[i], a);
            const r = raw.add(s, yi);
            s.dispose();
            return r;
          }));
        };
        // x0 = 0, so r0 = p0 = ∇J.
        let x = own(fromLeaves(g, leaves(g).map((t) => raw.zeros(t.shape, 'f32', t.device))));
        let r = own(cloneTree(g));
        let p = own(cloneTree(g));
        let rs = await dotTrees(r, r);
        for (let k = 0; k < cgSteps && rs > cgTol; k++) {
          const Ap = own(A(p));
          const alpha = rs / (await dotTrees(p, Ap));
          const x1 = own(axpy(alpha, p, x));
          const r1 = own(axpy(-alpha, Ap, r));
          drop(x, r, Ap);
          x = x1;
          r = r1;
          const rsNew = await dotTrees(r, r);
          const p1 = own(axpy(rsNew / rs, p, r));
          drop(p);
          p = p1;
          rs = rsNew;
        }
        live.delete(x);
        const outerLoss = await evalLoss((q: P) => problem.outerLoss(q, task), u);
        return { gradient: x, outerLoss, stats };
      } finally {
        op?.dispose();
        for (const t of live) disposeTree(t);
        disposeTree(u);
      }
    },
  };
}
