/** @file Adjoint meta-gradient: solves dλ/dt = −(∂f/∂u)ᵀλ backward from λ(T) = ∂J/∂u(T) over tracked states (Heun, as the A-MAML paper, or Euler). */
import { InvalidArgumentError, NonFiniteDynamicsError } from '../errors';
import type { ParamTree } from '@metagrad/models';
import { type DifferentiableDynamics, type Pullback, assertTensorTree, autogradPullback } from './autograd-vjp';
import type { TrackedSolution } from './track';
import { type ScopedOps, scoped } from './scopes';
import { type HostVector, type VectorOps, defaultOps, isAllFinite, normForMessage, retain } from './vector-ops';

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

/** The pullback the sweep calls: the hand-written VJPs, or those autograd derives from f. Its results are the sweep's. */
function pullback<V>(options: AdjointOptions<V>, vs: ScopedOps<V>): (u: V, t: number, lambda: V) => Promise<Pullback<V>> {
  const { vjpF, paramVjp, f, params } = options;
  if ((vjpF === undefined) === (f === undefined)) throw new InvalidArgumentError('adjointGradient: give exactly one of vjpF and f');
  if (f !== undefined) {
    if (paramVjp !== undefined) throw new InvalidArgumentError('adjointGradient: paramVjp goes with vjpF; with f, give params');
    assertTensorTree(options.dJdUT, 'adjointGradient');
    // V is a tensor tree here (checked on dJdUT): the one cast between the generic sweep and autograd.
    const derived = autogradPullback(f as unknown as DifferentiableDynamics<ParamTree>, params as ParamTree | undefined);
    return async (u, t, lambda) => {
      const { du, dp } = derived(u as ParamTree, t, lambda as ParamTree) as Pullback<V>;
      return { du: vs.own(du), ...(dp !== undefined ? { dp: vs.own(dp) } : {}) };
    };
  }
  if (params !== undefined) throw new InvalidArgumentError('adjointGradient: params goes with f; with vjpF, give paramVjp');
  return async (u, t, lambda) => {
    const du = vs.own(await vjpF!(u, t, lambda));
    return paramVjp ? { du, dp: vs.own(await paramVjp(u, t, lambda)) } : { du };
  };
}

/**
 * The sweep between two tracked states: λ at the last state visited, g = (∂f/∂u)ᵀλ and p = (∂f/∂p)ᵀλ there (for the
 * interval below it), and μ = ∫ (∂f/∂p)ᵀλ dt from there to T.
 */
interface Sweep<V> {
  lambda: V;
  g?: V;
  p?: V;
  mu?: V;
}

/** The checkpoint stretches [k0, k1] from the top down (one stretch [0, n] when every state is stored). */
function stretches(n: number, every: number): [number, number][] {
  const out: [number, number][] = [];
  for (let k1 = n; k1 > 0; k1 = Math.floor((k1 - 1) / every) * every) out.push([Math.floor((k1 - 1) / every) * every, k1]);
  return out;
}

/**
 * A NaN/Inf from a VJP persists to λ(t_0) (each step adds to λ), so one check at the end of a sweep (a readback)
 * catches it: the NonFiniteDynamicsError every adjoint sweep throws, naming `source` (what computed the products).
 */
export async function assertSweepFinite<V>(ops: VectorOps<V>, t0: number, dJdUT: V, source: string, ...ends: (V | undefined)[]): Promise<void> {
  for (const v of ends) {
    if (v === undefined || (await isAllFinite(ops, v))) continue;
    throw new NonFiniteDynamicsError(
      t0,
      await normForMessage(ops, dJdUT),
      `the adjoint sweep back from T ended with λ(t_0) NaN or ±Infinity (the state norm here is ‖dJ/du(T)‖): ` +
        `${source} returned non-finite values, or the states u(t_k) it was given were not finite`,
    );
  }
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
  const vs = scoped(ops);
  const pull = pullback(options, vs);
  const hasParams = options.paramVjp !== undefined || options.params !== undefined;
  let vjpCalls = 0;
  let recomputedStates = 0;
  /** μ + Σ c·p: the quadrature of the parameter term (unchanged where the dynamics have no parameter). */
  const quadrature = (mu: V | undefined, terms: [number, V | undefined][]): V | undefined =>
    terms.some(([, p]) => p === undefined) ? mu : terms.reduce<V | undefined>((acc, [c, p]) => (acc === undefined ? vs.scale(p!, c) : vs.axpy(c, p!, acc)), mu);

  /** The interval [t_j, t_{j+1}] ends: Euler λ_j = λ_{j+1} + h·g_{j+1}; Heun λ̃_j = λ_{j+1} + h·g_{j+1}, λ_j = λ_{j+1} + h/2·(g_{j+1} + g(u_j, λ̃_j)). */
  const endInterval = async (s: Sweep<V>, j: number, uj: V): Promise<Sweep<V>> => {
    const h = times[j + 1] - times[j];
    if (method === 'euler') return { lambda: vs.axpy(h, s.g!, s.lambda), mu: quadrature(s.mu, [[h, s.p]]) };
    const { du: g2, dp: p2 } = await pull(uj, times[j], vs.axpy(h, s.g!, s.lambda));
    vjpCalls++;
    return {
      lambda: vs.axpy(h / 2, vs.add(s.g!, g2), s.lambda),
      mu: quadrature(s.mu, [
        [h / 2, s.p],
        [h / 2, p2],
      ]),
    };
  };
  /** The interval [t_{j−1}, t_j] starts: g_j = (∂f/∂u)ᵀλ_j (and p_j) at u_j. */
  const startInterval = async (s: Sweep<V>, j: number, uj: V): Promise<Sweep<V>> => {
    const { du: g, dp: p } = await pull(uj, times[j], s.lambda);
    vjpCalls++;
    return { ...s, g, p };
  };
  /**
   * Tracked state j, one linearisation of f at u_j: both products there come from it (a cached Hessian operator,
   * freed with this scope). The state consumes the sweep it is given, so λ_{j+1} and g_{j+1} go once λ_j exists.
   */
  const atState = (entering: Sweep<V>, j: number, uj: V): Promise<Sweep<V>> =>
    vs.scope(async () => {
      let s = vs.take(entering);
      if (j < n) s = await vs.carry(s, (x) => endInterval(x, j, uj));
      return j > 0 ? vs.carry(s, (x) => startInterval(x, j, uj)) : s;
    });

  return vs.scope(async () => {
    let sweep: Sweep<V> = { lambda: options.dJdUT };
    // One stretch between checkpoints at a time: a recomputed stretch's states live only while it is swept.
    for (const [k0, k1] of traj ? stretches(n, traj.checkpointEvery) : [[0, n]]) {
      sweep = await vs.scope(async () => {
        const stored = !traj || traj.states.slice(k0, k1 + 1).every((u) => u !== undefined);
        const seg = !traj ? options.states!.slice(k0, k1 + 1) : stored ? (traj.states.slice(k0, k1 + 1) as V[]) : await traj.recompute(k0, k1);
        if (!stored) recomputedStates += k1 - k0 - 1;
        let s = sweep;
        for (let j = k1 === n ? n : k1 - 1; j >= k0; j--) s = await atState(s, j, seg[j - k0]);
        return s;
      });
    }
    const { lambda, mu } = sweep;
    await assertSweepFinite(vs, times[0], options.dJdUT, hasParams ? 'the VJP or paramVjp' : 'the VJP', lambda, mu);
    const result: AdjointResult<V> = {
      gradient: lambda === options.dJdUT ? retain(vs, lambda) : lambda,
      vjpCalls,
      recomputedStates,
    };
    if (hasParams) result.paramGradient = mu ?? vs.scale(options.dJdUT, 0);
    return result;
  });
}
