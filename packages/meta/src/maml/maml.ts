/** @file MAML (second order, differentiating through the unrolled inner GD with createGraph) and first-order MAML. */
import * as raw from '@metagrad/tensor';
import type { Tensor } from '@metagrad/tensor';
import { detach, enableGrad, grad, mulScalar, requiresGrad, sub } from '@metagrad/autograd';
import { type ParamTree, disposeTree, fromLeaves, leaves } from '@metagrad/models';
import { type MetaGradient, type MetaGradientTensors, type MetaLearner, type MetaProblem, newMetaStats } from './types';
import { checkPositive, checkPositiveInt, cloneTree, gdStep, lossGradient, lossValue, readScalar } from './inner';

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
  const { steps, innerLr } = options;
  return withReadback({
    name: 'MAML',
    metaGradientTensors<P extends ParamTree, D>(problem: MetaProblem<P, D>, theta: P, task: D): MetaGradientTensors<P> {
      const stats = newMetaStats();
      const thetaLeaves = leaves(theta).map((t) => requiresGrad(detach(t)));
      // Handles this call created; disposing a handle never frees graph that a later step still reaches.
      const handles: Tensor[] = [];
      let J: Tensor | undefined;
      try {
        const gradient = enableGrad(() => {
          let u = thetaLeaves;
          for (let k = 0; k < steps; k++) {
            const L = problem.innerLoss(fromLeaves(theta, u), task);
            const gs = grad(L, u, { createGraph: true, allowUnused: true });
            L.dispose();
            u = u.map((x, i) => {
              const g = gs[i];
              if (!g) return x;
              const step = mulScalar(g, innerLr);
              const next = sub(x, step);
              g.dispose();
              step.dispose();
              handles.push(next);
              return next;
            });
            stats.innerGradients++;
            stats.innerSteps++;
          }
          J = problem.outerLoss(fromLeaves(theta, u), task);
          const gs = grad(J, thetaLeaves, { allowUnused: true });
          return gs.map((g, i) => g ?? zerosLike(thetaLeaves[i]));
        });
        return { gradient: fromLeaves(theta, gradient), outerLoss: detachAndDispose(J!), stats };
      } finally {
        for (const t of handles) t.dispose();
        for (const t of thetaLeaves) t.dispose();
      }
    },
  });
}

/** A learner from its readback-free core: `metaGradient` runs the core, then reads the outer loss. */
function withReadback(core: { name: string; metaGradientTensors: NonNullable<MetaLearner['metaGradientTensors']> }): MetaLearner {
  return {
    ...core,
    async metaGradient<P extends ParamTree, D>(problem: MetaProblem<P, D>, theta: P, task: D): Promise<MetaGradient<P>> {
      const out = core.metaGradientTensors(problem, theta, task);
      return { gradient: out.gradient, outerLoss: await readScalar(out.outerLoss), stats: out.stats };
    },
  };
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
  return withReadback({
    name,
    metaGradientTensors<P extends ParamTree, D>(problem: MetaProblem<P, D>, theta: P, task: D): MetaGradientTensors<P> {
      const stats = newMetaStats();
      const u = innerGd(problem, theta, task, options, 0, stats);
      try {
        const gradient = direction(problem, theta, task, u);
        const outerLoss = lossValue((p: P) => problem.outerLoss(p, task), u);
        return { gradient, outerLoss, stats };
      } finally {
        disposeTree(u);
      }
    },
  });
}

/**
 * Plain GD from θ on the support loss, optionally with iMAML's proximal term λ/2‖u − θ‖² (gradient λ(u − θ)).
 * Returns a fresh tree; θ stays the caller's.
 */
export function innerGd<P extends ParamTree, D>(
  problem: MetaProblem<P, D>, theta: P, task: D, o: MamlOptions, proximal: number, stats = newMetaStats(),
): P {
  let u: P = theta;
  for (let k = 0; k < o.steps; k++) {
    let g = lossGradient((p: P) => problem.innerLoss(p, task), u);
    if (proximal > 0) {
      const withProx = addProximal(g, u, theta, proximal);
      disposeTree(g);
      g = withProx;
    }
    const next = gdStep(u, g, o.innerLr);
    disposeTree(g);
    if (u !== theta) disposeTree(u);
    u = next;
    stats.innerGradients++;
    stats.innerSteps++;
  }
  // Never hand back θ itself: the caller disposes what it gets.
  return u === theta ? cloneTree(theta) : u;
}

/** g + λ(u − θ) leafwise (raw ops). */
function addProximal<P extends ParamTree>(g: P, u: P, theta: P, lambda: number): P {
  const ul = leaves(u);
  const tl = leaves(theta);
  return fromLeaves(g, leaves(g).map((gi, i) => rawAxpyDiff(gi, ul[i], tl[i], lambda)));
}

function rawAxpyDiff(g: Tensor, u: Tensor, t: Tensor, lambda: number): Tensor {
  const d = raw.sub(u, t);
  const s = raw.mulScalar(d, lambda);
  const out = raw.add(g, s);
  d.dispose();
  s.dispose();
  return out;
}

function zerosLike(t: Tensor): Tensor {
  return raw.zeros(t.shape, 'f32', t.device);
}

function detachAndDispose(t: Tensor): Tensor {
  const d = detach(t);
  t.dispose();
  return d;
}
