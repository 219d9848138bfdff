/** @file Adjoint-MAML's pieces: the gradient flow (graph-free for the forward solve, differentiable for autograd), its hand-written VJP, the flat-vector problem. */
import { type Tensor, tidy } from '@metagrad/tensor';
import { HvpOperator, noGrad } from '@metagrad/autograd';
import { type ParamTree, tree, unflattenTree } from '@metagrad/models';
import type { AdjointVjp } from '../ode/adjoint';
import type { DifferentiableDynamics } from '../ode/autograd-vjp';
import { gradTree, lossGradient } from './inner';
import type { MetaProblem } from './types';

/** The flow f(u) = −∇L(u) − μ(u − θ) with no graph: what the forward solver integrates. */
export function gradientFlow<P extends ParamTree>(inner: (p: P) => Tensor, theta: P, mu: number): (t: number, u: P) => P {
  return (_t, u) =>
    tidy(() => {
      const g = lossGradient(inner, u);
      return noGrad(() => (mu > 0 ? tree.axpy(-mu, tree.sub(u, theta), tree.scale(g, -1)) : tree.scale(g, -1)));
    });
}

/**
 * The same flow f(t, u, θ) = −∇L(u) − μ(u − θ), differentiable (the gradient taken with createGraph), for the
 * adjoint to derive (∂f/∂u)ᵀλ = −H(u)λ − μλ and (∂f/∂θ)ᵀλ = μλ by autograd.
 */
export function differentiableFlow<P extends ParamTree>(
  inner: (p: P) => Tensor,
  theta: P,
  mu: number,
  onLoss?: (t: number, value: Tensor) => void,
): DifferentiableDynamics<P> {
  return (t, u, p = theta) => {
    const L = inner(u);
    onLoss?.(t, L);
    const g = gradTree(L, u, true);
    return mu > 0 ? tree.axpy(-mu, tree.sub(u, p), tree.scale(g, -1)) : tree.scale(g, -1);
  };
}

/**
 * The hand-written VJP (∂f/∂u)ᵀλ = −H(u)λ − μλ over one HvpOperator per tracked state: the adjoint sweep asks for
 * H(u_j) twice in a row (λ̃_j, then λ_j) inside the scope of state j, so one cached operator serves both and goes
 * with that scope; `onState` sees each new state's operator (its value is L(u)).
 */
export function hessianVjp<P extends ParamTree>(inner: (p: P) => Tensor, mu: number, onState?: (u: P, t: number, value: Tensor) => void): AdjointVjp<P> {
  let cached: { u: P; op: HvpOperator } | undefined;
  return (u, t, lambda) => {
    if (cached?.u !== u) {
      cached = { u, op: new HvpOperator((...ls: Tensor[]) => inner(tree.fromLeaves(u, ls)), tree.leaves(u)) };
      onState?.(u, t, cached.op.value);
    }
    const op = cached.op;
    return tidy(() =>
      noGrad(() => {
        const hv = tree.fromLeaves(lambda, op.apply(tree.leaves(lambda)));
        return mu > 0 ? tree.axpy(-mu, lambda, tree.scale(hv, -1)) : tree.scale(hv, -1);
      }),
    );
  };
}

/** The problem over one flat vector: the losses see `like`'s tree, sliced (differentiably) out of the vector. */
export function flatProblem<P extends ParamTree, D>(problem: MetaProblem<P, D>, like: P): MetaProblem<Tensor, D> {
  const lift =
    (loss: (p: P, task: D) => Tensor) =>
    (v: Tensor, task: D): Tensor =>
      tidy(() => loss(unflattenTree(v, like), task));
  return { innerLoss: lift((p, t) => problem.innerLoss(p, t)), outerLoss: lift((p, t) => problem.outerLoss(p, t)) };
}
