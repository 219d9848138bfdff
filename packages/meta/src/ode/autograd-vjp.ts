/** @file The adjoint's vector-Jacobian products derived by autograd from the dynamics f(t, u[, p]) alone. */
import * as raw from '@metagrad/tensor';
import { InvalidArgumentError, type Tensor, tidy } from '@metagrad/tensor';
import { enableGrad, grad } from '@metagrad/autograd';
import { type ParamTree, tree } from '@metagrad/models';

/**
 * Differentiable dynamics over a tensor tree: f(t, u) (or f(t, u, p) with a parameter p), synchronous and built from
 * @metagrad/autograd ops, so that autograd can pull a cotangent back through it. Gradient flow f(u) = −∇L(u) must
 * take its gradient with `createGraph: true` when u requires grad (then the pullback is −H(u)λ).
 */
export type DifferentiableDynamics<V extends ParamTree> = (t: number, u: V, p?: V) => V;

/** (∂f/∂u)ᵀλ and, where f has a parameter, (∂f/∂p)ᵀλ: what one adjoint evaluation needs. Fresh trees, caller-owned. */
export interface Pullback<V> {
  du: V;
  dp?: V;
}

/**
 * The pullback of f at (t, u) by one reverse pass: f runs on fresh leaves of u (and of p) that require grad, and
 * grad(f, [u, p], λ) gives both products at once. Costs one evaluation of f with its graph and one backward, against
 * a hand-written VJP's one product (for gradient flow with a cached Hessian operator, 1 HVP against a gradient graph
 * and a double backward per call here).
 */
export function autogradPullback<V extends ParamTree>(f: DifferentiableDynamics<V>, params?: V): (u: V, t: number, lambda: V) => Pullback<V> {
  return (u, t, lambda) =>
    tidy(() => {
      const uLeaf = tree.requiresGrad(u);
      const pLeaf = params === undefined ? undefined : tree.requiresGrad(params);
      const out = enableGrad(() => f(t, uLeaf, pLeaf));
      const inputs = [...tree.leaves(uLeaf), ...(pLeaf ? tree.leaves(pLeaf) : [])];
      // Outputs f computed without touching u or p are constants: they pull nothing back.
      const outs: Tensor[] = [];
      const cots: Tensor[] = [];
      const lambdas = tree.leaves(lambda);
      tree.leaves(out).forEach((o, i) => {
        if (o.requiresGrad) {
          outs.push(o);
          cots.push(lambdas[i]);
        }
      });
      const gs = outs.length ? grad(outs, inputs, { gradOutputs: cots, allowUnused: true }) : inputs.map(() => null);
      const full = gs.map((g, i) => g ?? raw.zeros(inputs[i].shape, 'f32', inputs[i].device));
      const nu = tree.leaves(u).length;
      return {
        du: tree.fromLeaves(u, full.slice(0, nu)),
        ...(params !== undefined ? { dp: tree.fromLeaves(params, full.slice(nu)) } : {}),
      };
    });
}

/** Throws unless `v` is a tensor tree (a Tensor, or arrays / plain records of them): autograd cannot see host vectors. */
export function assertTensorTree(v: unknown, where: string): void {
  const ok = (x: unknown): boolean =>
    x instanceof raw.Tensor ||
    (Array.isArray(x) && x.length > 0 && x.every(ok)) ||
    (typeof x === 'object' && x !== null && !Array.isArray(x) && !ArrayBuffer.isView(x) && Object.values(x).length > 0 && Object.values(x).every(ok));
  if (!ok(v)) throw new InvalidArgumentError(`${where}: deriving the VJP from f needs states that are tensor trees (give vjpF for host vectors)`);
}
