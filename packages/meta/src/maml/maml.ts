/** @file MAML (second order, differentiating through the unrolled inner GD with createGraph) and first-order MAML. */
import { type Tensor, tidy } from '@metagrad/tensor';
import { detach, enableGrad, noGrad } from '@metagrad/autograd';
import { type ParamTree, tree } from '@metagrad/models';
import { type MetaGradientTensorsOut, type MetaLearner, type MetaProblem, newMetaStats } from './types';
import { checkPositive, checkPositiveInt, gdStep, gradTree, lossGradient, lossValue, stackLosses, valueAndGradient } from './inner';
import { tensorLearner } from './learner';

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
      const losses: Tensor[] | undefined = intermediates ? [] : undefined;
      const u = innerGd(problem, theta, task, options, 0, stats, losses);
      const out = { gradient: direction(problem, theta, task, u), outerLoss: lossValue((p: typeof theta) => problem.outerLoss(p, task), u), stats };
      return losses ? { ...out, adapted: u, innerLosses: stackLosses(losses) } : out;
    });
  });
}

/**
 * Plain GD from θ on the support loss, optionally with iMAML's proximal term λ/2‖u − θ‖² (gradient λ(u − θ)):
 * u_{k+1} = u_k − α(∇L(u_k) [+ λ(u_k − θ)]). Returns a fresh tree (θ stays the caller's); with `losses`, L(u_k)
 * (without the proximal term) is appended to it for every step.
 */
export function innerGd<P extends ParamTree, D>(
  problem: MetaProblem<P, D>, theta: P, task: D, o: MamlOptions, proximal: number, stats = newMetaStats(), losses?: Tensor[],
): P {
  let u = theta;
  for (let k = 0; k < o.steps; k++) {
    const { next, value } = tidy(() => {
      const { value, gradient } = valueAndGradient((p: P) => problem.innerLoss(p, task), u);
      const g = proximal > 0 ? noGrad(() => tree.axpy(proximal, tree.sub(u, theta), gradient)) : gradient;
      return { next: gdStep(u, g, o.innerLr), value };
    });
    if (losses) losses.push(value);
    else value.dispose();
    if (u !== theta) tree.dispose(u);
    u = next;
    stats.innerGradients++;
    stats.innerSteps++;
  }
  return u; // steps ≥ 1: never θ itself
}
