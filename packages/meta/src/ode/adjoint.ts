/** @file Adjoint meta-gradient: solves dλ/dt = −(∂f/∂u)ᵀλ backward from λ(T) = ∂J/∂u(T) over tracked states (Heun, as the A-MAML paper, or Euler). */
import { InvalidArgumentError, NonFiniteDynamicsError } from '../errors';
import type { ParamTree } from '@metagrad/models';
import { type DifferentiableDynamics, type Pullback, assertTensorTree, autogradPullback } from './autograd-vjp';
import type { TrackedSolution } from './track';
import { type HostVector, type VectorOps, defaultOps, isAllFinite, normForMessage, release, retain } from './vector-ops';

/**
 * (∂f/∂u)ᵀλ at (u, t): a vector-Jacobian product of the forward dynamics. For gradient flow f = −∇L it is −H(u)λ
 * (a Hessian-vector product). The result is owned by the solver.
 */
export type AdjointVjp<V> = (u: V, t: number, lambda: V) => V | Promise<V>;

export type AdjointMethod = 'heun' | 'euler';

export interface AdjointOptions<V> {
  /** Tracked states u(t_0..t_n), all of them; or give `trajectory`. */
  states?: readonly V[];
  /** Grid times t_0 < … < t_n matching `states` (non-uniform grids are fine). */
  times?: readonly number[];
  /** A solveTracked result; where it kept only checkpoints, stretches are re-solved from them on the way back. */
  trajectory?: TrackedSolution<V>;
  /** λ(T) = ∂J/∂u(T); stays the caller's. */
  dJdUT: V;
  /** The hand-written (∂f/∂u)ᵀλ (fastest: a cached Hessian operator, say). Give this or `f`. */
  vjpF?: AdjointVjp<V>;
  /**
   * The dynamics f(t, u[, p]) alone, differentiable (autograd ops, synchronous; see DifferentiableDynamics): the
   * VJPs are then derived by autograd, (∂f/∂u)ᵀλ and, with `params`, (∂f/∂p)ᵀλ from one reverse pass through f.
   * States must be tensor trees. Give this or `vjpF`.
   */
  f?: (t: number, u: V, p?: V) => V;
  /** With `f`: the parameter p it is called with; its gradient ∫(∂f/∂p)ᵀλ dt comes back as `paramGradient`. */
  params?: V;
  /**
   * 'heun' (default): backward modified Euler, second order — the paper's scheme:
   *   λ̃_j = λ_{j+1} + h·g(u_{j+1}, λ_{j+1}),  λ_j = λ_{j+1} + h/2·[g(u_{j+1}, λ_{j+1}) + g(u_j, λ̃_j)],  g = (∂f/∂u)ᵀλ.
   * 'euler': λ_j = λ_{j+1} + h·g(u_{j+1}, λ_{j+1}), first order (for comparison).
   */
  method?: AdjointMethod;
  /** Default hostVectorOps. */
  ops?: VectorOps<V>;
  /**
   * Where the dynamics also depend on a parameter p that the initial state does not carry (f(u, t; p)), its VJP
   * (∂f/∂p)ᵀλ; the result then adds dJ/dp = ∫ (∂f/∂p)ᵀλ dt as `paramGradient`, integrated by the same scheme
   * (the augmented adjoint state), so it shares the sweep's order. V-shaped parameters only.
   */
  paramVjp?: AdjointVjp<V>;
}

export interface AdjointResult<V> {
  /** λ(t_0) = dJ/du(t_0): the meta-gradient w.r.t. the initial state. Owned by the caller. */
  gradient: V;
  /** VJP (Hessian-vector product) evaluations: 2 per interval for Heun, 1 for Euler. */
  vjpCalls: number;
  /** States re-solved from checkpoints (0 when all were stored). */
  recomputedStates: number;
  /** ∫ (∂f/∂p)ᵀλ dt over the grid, where `paramVjp` was given. Owned by the caller. */
  paramGradient?: V;
}

/** The pullback the sweep calls: the hand-written VJPs, or those autograd derives from f. */
function pullback<V>(options: AdjointOptions<V>): (u: V, t: number, lambda: V) => Promise<Pullback<V>> {
  const { vjpF, paramVjp, f, params } = options;
  if ((vjpF === undefined) === (f === undefined)) throw new InvalidArgumentError('adjointGradient: give exactly one of vjpF and f');
  if (f !== undefined) {
    if (paramVjp !== undefined) throw new InvalidArgumentError('adjointGradient: paramVjp goes with vjpF; with f, give params');
    assertTensorTree(options.dJdUT, 'adjointGradient');
    // V is a tensor tree here (checked on dJdUT): the one cast between the generic sweep and autograd.
    const derived = autogradPullback(f as unknown as DifferentiableDynamics<ParamTree>, params as ParamTree | undefined);
    return async (u, t, lambda) => derived(u as ParamTree, t, lambda as ParamTree) as Pullback<V>;
  }
  if (params !== undefined) throw new InvalidArgumentError('adjointGradient: params goes with f; with vjpF, give paramVjp');
  return async (u, t, lambda) => {
    const du = await vjpF!(u, t, lambda);
    return paramVjp ? { du, dp: await paramVjp(u, t, lambda) } : { du };
  };
}

/** Backward sweep over [t_0, t_n]: λ(t_0) from λ(t_n), stepping through the tracked states. */
export async function adjointGradient<V = HostVector>(options: AdjointOptions<V>): Promise<AdjointResult<V>> {
  const ops = defaultOps(options.ops, options.dJdUT, 'adjointGradient');
  const method = options.method ?? 'heun';
  if (method !== 'heun' && method !== 'euler') throw new InvalidArgumentError(`unknown adjoint method '${String(method)}' (choose heun, euler)`);
  const traj = options.trajectory;
  if ((traj === undefined) === (options.states === undefined)) throw new InvalidArgumentError('adjointGradient: give exactly one of states and trajectory');
  const times = traj ? traj.times : options.times;
  if (!times) throw new InvalidArgumentError('adjointGradient: states need their times');
  const n = times.length - 1;
  if (!traj && options.states!.length !== times.length) {
    throw new InvalidArgumentError(`adjointGradient: ${options.states!.length} states for ${times.length} times`);
  }
  for (let k = 1; k <= n; k++) {
    if (!(times[k] > times[k - 1])) throw new InvalidArgumentError(`adjointGradient: times must be strictly increasing, got [${times.join(', ')}]`);
  }
  const pull = pullback(options);
  let vjpCalls = 0;
  let recomputedStates = 0;
  let lambda = options.dJdUT;
  let ownsLambda = false;
  const setLambda = (next: V): void => {
    if (ownsLambda) release(ops, lambda);
    lambda = next;
    ownsLambda = true;
  };
  const hasParams = options.paramVjp !== undefined || options.params !== undefined;
  let mu: V | undefined;
  /** μ += h·(c1·p1 + c2·p2): the quadrature of the parameter term, released as it goes. */
  const accumulate = (terms: (readonly [number, V])[]): void => {
    let acc = mu;
    for (const [c, v] of terms) {
      const next = acc === undefined ? ops.scale(v, c) : ops.axpy(c, v, acc);
      release(ops, acc, v);
      acc = next;
    }
    mu = acc;
  };

  /** One backward step from t_{j+1} to t_j. */
  const step = async (uj: V, tj: number, uj1: V, tj1: number): Promise<void> => {
    const h = tj1 - tj;
    const { du: g1, dp: p1 } = await pull(uj1, tj1, lambda);
    vjpCalls++;
    if (method === 'euler') {
      const next = ops.axpy(h, g1, lambda);
      release(ops, g1);
      setLambda(next);
      if (p1 !== undefined) accumulate([[h, p1]]);
      return;
    }
    const predicted = ops.axpy(h, g1, lambda);
    const { du: g2, dp: p2 } = await pull(uj, tj, predicted);
    vjpCalls++;
    const sum = ops.add(g1, g2);
    const next = ops.axpy(h / 2, sum, lambda);
    release(ops, g1, predicted, g2, sum);
    setLambda(next);
    if (p1 !== undefined && p2 !== undefined) accumulate([[h / 2, p1], [h / 2, p2]]);
  };

  try {
    if (!traj) {
      const states = options.states!;
      for (let j = n - 1; j >= 0; j--) await step(states[j], times[j], states[j + 1], times[j + 1]);
    } else {
      // Walk back one checkpoint stretch at a time; a stretch's states live only while it is being swept.
      const every = traj.checkpointEvery;
      let k1 = n;
      while (k1 > 0) {
        const k0 = Math.floor((k1 - 1) / every) * every;
        const stored = traj.states.slice(k0, k1 + 1).every((s) => s !== undefined);
        const seg = stored ? (traj.states.slice(k0, k1 + 1) as V[]) : await traj.recompute(k0, k1);
        if (!stored) recomputedStates += k1 - k0 - 1;
        try {
          for (let j = k1 - 1; j >= k0; j--) await step(seg[j - k0], times[j], seg[j + 1 - k0], times[j + 1]);
        } finally {
          if (!stored) release(ops, ...seg);
        }
        k1 = k0;
      }
    }
    // A NaN/Inf from the VJP persists to λ(t_0) (each step adds to λ): one check at the end (a readback) catches it.
    const finite = (await isAllFinite(ops, lambda)) && (mu === undefined || (await isAllFinite(ops, mu)));
    if (!finite) {
      const norm = await normForMessage(ops, options.dJdUT);
      throw new NonFiniteDynamicsError(
        times[0],
        norm,
        `the adjoint sweep back from T ended with λ(t_0) NaN or ±Infinity (the state norm here is ‖dJ/du(T)‖): ` +
          `the VJP${hasParams ? ' or paramVjp' : ''} returned non-finite values, or the states u(t_k) it was given were not finite`,
      );
    }
  } catch (e) {
    if (ownsLambda) release(ops, lambda);
    release(ops, mu);
    throw e;
  }
  const result: AdjointResult<V> = { gradient: ownsLambda ? lambda : retain(ops, lambda), vjpCalls, recomputedStates };
  if (hasParams) result.paramGradient = mu ?? ops.scale(options.dJdUT, 0);
  return result;
}
