/** @file MAML (second order, differentiating through the unrolled inner GD with createGraph) and first-order MAML. */
import { type Tensor, tidy } from '@metagrad/tensor';
import { detach, enableGrad, noGrad } from '@metagrad/autograd';
import { type ParamTree, tree } from '@metagrad/models';
import { type MetaGradientTensorsOut, type MetaLearner, type MetaProblem, newMetaStats } from './types';
import { checkPositive, checkPositiveInt, gdStep, gradTree, lossGradient, lossValue, stackLosses, valueAndGradient } from './inner';
import { tensorLearner } from './learner';
import { carry } from '../core/loop';

export interface MamlOptions {
  /** Inner gradient-descent steps on the support loss. */
  steps: number;
  /** Inner step size α. */
  innerLr: number;
}

function checkMaml(where: string, o: MamlOptions): void {
  checkPositiveInt(where, 'steps', o.steps);
  checkPositive(where, 'innerLr', o.innerLr);
}

/**
 * MAML (Finn et al. 2017): u_{k+1} = u_k − α∇L(u_k) recorded with createGraph, then dJ(u_n)/dθ by backprop
 * through the whole unroll — exact for the discrete inner loop, with memory growing with `steps`.
 */
export function MAML(options: MamlOptions): MetaLearner {
  checkMaml('MAML', options);
  const { steps, innerLr: alpha } = options;
  return tensorLearner('MAML', (problem, theta, task, intermediates) => {
    const stats = newMetaStats();
    return tidy(() => {
      const theta0 = tree.requiresGrad(theta);
      const losses: Tensor[] = [];
      let u = theta0;
      const J = enableGrad(() => {
        for (let k = 0; k < steps; k++) {
          const L = problem.innerLoss(u, task);
          u = tree.axpy(-alpha, gradTree(L, u, true), u); // u_{k+1} = u_k − α∇L(u_k), on the tape
          losses.push(L);
          stats.innerGradients++;
          stats.innerSteps++;
        }
        return problem.outerLoss(u, task);
      });
      const out: MetaGradientTensorsOut<typeof theta> = { gradient: gradTree(J, theta0), outerLoss: detach(J), stats };
      // φ_T and the losses as detached views; the losses gathered into one [T] tensor by buffer copies (no dispatch).
      return intermediates ? { ...out, adapted: tree.detach(u), innerLosses: stackLosses(losses.map(detach)) } : out;
    });
  });
}

/** First-order MAML: the same inner loop without a graph; dJ/dθ ≈ ∇J(u_n) (the Jacobian du_n/dθ dropped to I). */
export function FOMAML(options: MamlOptions): MetaLearner {
  return graphFreeLearner('FOMAML', options, (problem, _theta, task, u) => lossGradient((p) => problem.outerLoss(p, task), u));
}

/**
 * A learner whose meta-gradient is a function of θ and the adapted u_n = GD^n(θ) alone, with no graph through the
 * inner loop (FOMAML, Reptile); it also reports the outer loss at u_n.
 */
export function graphFreeLearner(
  name: string,
  options: MamlOptions,
  direction: <P extends ParamTree, D>(problem: MetaProblem<P, D>, theta: P, task: D, u: P) => P,
): MetaLearner {
  checkMaml(name, options);
  return tensorLearner(name, (problem, theta, task, intermediates) => {
    const stats = newMetaStats();
    return tidy(() => {
      const { adapted: u, losses } = innerGd(problem, theta, task, options, 0, stats, intermediates);
      const out = {
        gradient: direction(problem, theta, task, u),
        outerLoss: lossValue((p: typeof theta) => problem.outerLoss(p, task), u),
        stats,
      };
      return intermediates ? { ...out, adapted: u, innerLosses: stackLosses(losses) } : out;
    });
  });
}

/**
 * Plain GD from θ on the support loss, optionally with iMAML's proximal term λ/2‖u − θ‖² (gradient λ(u − θ)):
 * u_{k+1} = u_k − α(∇L(u_k) [+ λ(u_k − θ)]), each step a `carry` of (u_k, the losses so far). Returns φ = u_n, a
 * fresh tree (θ stays the caller's), and with `keepLosses` L(u_k) (without the proximal term) for every step.
 */
export function innerGd<P extends ParamTree, D>(
  problem: MetaProblem<P, D>,
  theta: P,
  task: D,
  o: MamlOptions,
  proximal: number,
  stats = newMetaStats(),
  keepLosses = false,
): { adapted: P; losses: Tensor[] } {
  let s = { u: theta, losses: [] as Tensor[] };
  for (let k = 0; k < o.steps; k++) {
    s = carry(
      s,
      ({ u, losses }) => {
        const { value, gradient } = valueAndGradient((p: P) => problem.innerLoss(p, task), u);
        const g = proximal > 0 ? noGrad(() => tree.axpy(proximal, tree.sub(u, theta), gradient)) : gradient;
        return { u: gdStep(u, g, o.innerLr), losses: keepLosses ? [...losses, value] : losses };
      },
      theta,
    );
    stats.innerGradients++;
    stats.innerSteps++;
  }
  return { adapted: s.u, losses: s.losses }; // steps ≥ 1: never θ itself
}
