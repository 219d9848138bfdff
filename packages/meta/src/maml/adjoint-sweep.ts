/** @file A-MAML's backward Heun sweep over a flat parameter vector with the per-state step compiled (one replayed submit per tracked state). */
import { type Tensor, dispose, tidy } from '@metagrad/tensor';
import * as raw from '@metagrad/tensor/raw';
import { type CompiledFunction, HvpOperator, compile, noGrad } from '@metagrad/autograd';
import { compiledOrEager } from '../compiled';
import { treeVectorOps } from '../ode/tensor-ops';
import { assertSweepFinite } from '../ode/adjoint';

/** λ and g = −H(u)λ at the last state swept. */
interface HeunCarry {
  lambda: Tensor;
  g: Tensor;
}

/** `body` given v ↦ −H(u)·v from one Hessian operator at u (its gradient graph built once, freed after the products). */
function withNegHessian<R>(inner: (u: Tensor) => Tensor, u: Tensor, body: (hv: (v: Tensor) => Tensor) => R): R {
  const op = new HvpOperator((x: Tensor) => inner(x), [u]);
  try {
    return noGrad(() => body((v) => raw.neg(op.apply([v])[0])));
  } finally {
    op.dispose();
  }
}

/**
 * The adjoint dλ/dt = H(u)λ of gradient flow, from λ(T) back to λ(t_0), by the paper's modified Euler over the
 * tracked states u_0..u_n on a uniform grid of spacing h (with g(u, λ) = −H(u)λ):
 *   g_n = g(u_n, λ_n);
 *   at u_j, 0 ≤ j < n:  λ̃_j = λ_{j+1} + h·g_{j+1},  λ_j = λ_{j+1} + h/2·(g_{j+1} + g(u_j, λ̃_j)),  g_j = g(u_j, λ_j).
 * A middle state's step is one function of (u_j, λ_{j+1}, g_{j+1}) with fixed shapes and host values, so it is
 * compiled and replayed state after state (op by op from a TraceError on); both products at u_j share its Hessian
 * operator. The same numbers as `adjointGradient` with `hessianVjp` (up to float32 rounding of the grid spacing,
 * here the nominal h: the differences t_{j+1} − t_j of a uniform grid differ in their last bits, and each distinct
 * host value would be a plan of its own).
 */
export async function compiledHeunSweep(
  inner: (u: Tensor) => Tensor,
  states: readonly Tensor[],
  dJdUT: Tensor,
  h: number,
): Promise<{ gradient: Tensor; vjpCalls: number; replayedStates: number }> {
  const n = states.length - 1;
  const ops = treeVectorOps<Tensor>();
  /** λ̃ = λ + h·g, then λ' = λ + h/2·(g + g(u, λ̃)): the end of the interval below the last state, at u. */
  const endInterval = (hv: (v: Tensor) => Tensor, s: HeunCarry): Tensor => raw.axpby(h / 2, raw.add(s.g, hv(raw.axpby(h, s.g, 1, s.lambda))), 1, s.lambda);
  const middle = (u: Tensor, lambda: Tensor, g: Tensor): HeunCarry =>
    withNegHessian(inner, u, (hv) => {
      const next = endInterval(hv, { lambda, g });
      return { lambda: next, g: hv(next) };
    });
  let step: CompiledFunction<[Tensor, Tensor, Tensor], HeunCarry> | null = compile(middle, { device: dJdUT.device });
  try {
    let s: HeunCarry = tidy(() => withNegHessian(inner, states[n], (hv) => ({ lambda: raw.mulScalar(dJdUT, 1), g: hv(dJdUT) })));
    for (let j = n - 1; j >= 1; j--) {
      const next = await compiledOrEager(step, middle, () => (step?.dispose(), (step = null)), states[j], s.lambda, s.g);
      dispose([s.lambda, s.g]);
      s = next;
    }
    // At u_0 only the interval's end: λ_0 (no g_0 is needed).
    const last = s;
    const gradient = tidy(() => withNegHessian(inner, states[0], (hv) => endInterval(hv, last)));
    dispose([s.lambda, s.g]);
    try {
      await assertSweepFinite(ops, 0, dJdUT, 'the Hessian-vector products', gradient);
    } catch (e) {
      gradient.dispose();
      throw e;
    }
    return { gradient, vjpCalls: 2 * n, replayedStates: step?.stats().replays ?? 0 };
  } finally {
    step?.dispose();
  }
}
