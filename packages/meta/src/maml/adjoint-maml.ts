/** @file Adjoint-MAML (Li et al. 2023): gradient flow forward with an ODE solver tracking states, the adjoint ODE backward with Heun over reusable HVPs. */
import * as raw from '@metagrad/tensor';
import { InvalidArgumentError, type Tensor, scope } from '@metagrad/tensor';
import { detach } from '@metagrad/autograd';
import { flattenTree, unflattenTree } from '@metagrad/models';
import { adjointGradient, type AdjointMethod } from '../ode/adjoint';
import { odeintDetailed, type OdeMethod } from '../ode/odeint';
import { treeVectorOps } from '../ode/tensor-ops';
import { solveTracked } from '../ode/track';
import { compiledHeunSweep } from './adjoint-sweep';
import { differentiableFlow, flatProblem, gradientFlow, hessianVjp } from './adjoint-flow';
import { checkNonNegative, checkPositive, evalLoss, lossGradient, lossValue, readLosses } from './inner';
import { asyncLearner } from './learner';
import { type MetaGradientOut, type MetaLearner, newMetaStats } from './types';

export interface AdjointMamlOptions {
  /** Length of the gradient flow du/dt = −∇L(u); T/h plays the part of the inner step count. */
  T: number;
  /** Spacing of the tracked states, and so of the backward Heun steps (the paper uses the inner lr, 0.01). */
  h: number;
  /** Forward solver: 'dopri5' (default, the paper's RK45) or a fixed method taking one step per grid interval. */
  forwardMethod?: OdeMethod;
  /** dopri5 tolerances (defaults 1e-5 / 1e-6: float32 cannot honour torchdiffeq's 1e-7 / 1e-9). */
  rtol?: number;
  atol?: number;
  /** Optional proximal term μ/2‖u − θ‖² in the inner loss (off by default, as in the paper). */
  proximal?: number;
  /** Backward scheme (default 'heun', the paper's modified Euler; 'euler' is first order). */
  backwardMethod?: AdjointMethod;
  /** Keep only checkpoints (every ≈√n states) and re-solve the stretches on the way back: less memory, one more forward solve. */
  recompute?: boolean;
  checkpointEvery?: number;
  /** dopri5 step budget per solve (default 100 000). */
  maxSteps?: number;
  /**
   * Solve over one flat parameter vector instead of the tree (default true): every solver vector operation is then
   * one or two dispatches instead of one or two per leaf, which is what the cost is made of for small models.
   */
  flatten?: boolean;
  /**
   * How the adjoint gets (∂f/∂u)ᵀλ: 'hvp' (default) the hand-written −H(u)λ − μλ over one reusable Hessian operator
   * per tracked state (fastest); 'autograd' derives it (and the proximal term's (∂f/∂θ)ᵀλ) from the differentiable
   * flow f(u) = −∇L(u) − μ(u − θ) alone, one double backward per product.
   */
  vjp?: 'hvp' | 'autograd';
  /**
   * Replay the backward sweep's per-state Heun step as one compiled plan (default true). It applies to the flat
   * vector with the 'hvp' VJP, Heun, no proximal term, all states stored and no intermediates; elsewhere the sweep
   * runs op by op.
   */
  compileSweep?: boolean;
}

/**
 * The meta-gradient of J(u(T)) w.r.t. u(0) = θ for the gradient flow du/dt = f(u) = −∇L(u) [− μ(u − θ)]:
 *  1. solve forward to T, tracking u on the grid t_k = k·h (dopri5's dense output between its own steps, or
 *     landing on the grid when recomputing from checkpoints, so that stretches replay bit for bit);
 *  2. λ(T) = ∇J(u(T));
 *  3. solve dλ/dt = H(u)λ [+ μλ] backward with Heun over the tracked states (each state's gradient graph is built
 *     once in an HvpOperator and serves both products that touch it; or the VJP autograd derives from f);
 *  4. dJ/dθ = λ(0) [+ μ∫λ dt, the proximal term's explicit dependence on θ].
 * Memory: one parameter vector per tracked state and no graph beyond one state's gradient.
 */
export function AdjointMAML(options: AdjointMamlOptions): MetaLearner {
  const { T, h } = options;
  checkPositive('AdjointMAML', 'T', T);
  checkPositive('AdjointMAML', 'h', h);
  const n = Math.round(T / h);
  if (n < 1 || Math.abs(n * h - T) > 1e-6 * T) {
    throw new InvalidArgumentError(`AdjointMAML: T / h must be a whole number of tracked intervals, got T=${T}, h=${h} (T/h = ${T / h})`);
  }
  const mu = options.proximal ?? 0;
  checkNonNegative('AdjointMAML', 'proximal', mu);
  const vjpMode = options.vjp ?? 'hvp';
  if (vjpMode !== 'hvp' && vjpMode !== 'autograd') throw new InvalidArgumentError(`AdjointMAML: vjp must be 'hvp' or 'autograd', got '${String(vjpMode)}'`);
  const method = options.forwardMethod ?? 'dopri5';
  const solverOpts = {
    method,
    rtol: options.rtol ?? 1e-5,
    atol: options.atol ?? 1e-6,
    stepSize: h,
    maxSteps: options.maxSteps,
  };
  const flatten = options.flatten ?? true;
  const times = Array.from({ length: n + 1 }, (_, k) => (k === n ? T : k * h));

  const learner: MetaLearner = asyncLearner('A-MAML', (problem, theta, task, intermediates) =>
    scope(async () => {
      type P = typeof theta;
      if (flatten && !(theta instanceof raw.Tensor)) {
        const r: MetaGradientOut<Tensor> = await learner.metaGradient(flatProblem(problem, theta), flattenTree(theta), task, { intermediates });
        const { gradient, adapted, ...rest } = r;
        return {
          ...rest,
          gradient: unflattenTree(gradient, theta),
          ...(adapted ? { adapted: unflattenTree(adapted, theta) } : {}),
        };
      }
      const stats = newMetaStats();
      stats.innerSteps = n;
      const ops = treeVectorOps<P>();
      const inner = (p: P): Tensor => problem.innerLoss(p, task);
      const outer = (p: P): Tensor => problem.outerLoss(p, task);

      // 1. Forward: u(t_k) on the grid (all of them, or checkpoints with `recompute`).
      const f = gradientFlow(inner, theta, mu);
      const traj = options.recompute
        ? await solveTracked(f, theta, T, {
            ...solverOpts,
            ops,
            nStates: n,
            recompute: true,
            checkpointEvery: options.checkpointEvery,
          })
        : undefined;
      const solved = traj ? undefined : await odeintDetailed(f, theta, times, { ...solverOpts, ops });
      stats.innerGradients += traj ? traj.stats.nfe : solved!.stats.nfe;
      const uT: P = traj ? traj.final : solved!.ys[n];

      // 2. λ(T) = ∇J(u(T)).
      const dJdUT = lossGradient(outer, uT);
      const outerLoss = await evalLoss(outer, uT);

      // 3. The adjoint sweep back to t_0; L(u(t_k)) is noted as each state's gradient graph is built (no extra forward;
      // keep()-ed, since the sweep's per-state scopes would free them, so freed here once read).
      const losses = new Map<number, Tensor>();
      const note = intermediates
        ? (t: number, value: Tensor) => void (losses.has(Math.round(t / h)) || losses.set(Math.round(t / h), raw.keep(detach(value))))
        : undefined;
      const derivative =
        vjpMode === 'hvp'
          ? {
              vjpF: hessianVjp(inner, mu, note && ((_u, t, value) => note(t, value))),
              paramVjp: mu > 0 ? (_u: P, _t: number, lambda: P): P => ops.scale(lambda, mu) : undefined,
            }
          : { f: differentiableFlow(inner, theta, mu, note), params: mu > 0 ? theta : undefined };
      const path = traj ? { trajectory: traj } : { states: solved!.ys, times };
      const compiledSweep =
        (options.compileSweep ?? true) &&
        solved &&
        theta instanceof raw.Tensor &&
        vjpMode === 'hvp' &&
        mu === 0 &&
        !intermediates &&
        (options.backwardMethod ?? 'heun') === 'heun';
      if (compiledSweep) {
        const r = await compiledHeunSweep(inner as unknown as (u: Tensor) => Tensor, solved.ys as unknown as Tensor[], dJdUT as unknown as Tensor, h);
        stats.hvps += r.vjpCalls;
        stats.replayedStates = r.replayedStates;
        return { gradient: r.gradient as unknown as P, outerLoss, stats };
      }
      try {
        const result = await adjointGradient<P>({
          ...path,
          ...derivative,
          dJdUT,
          ops,
          method: options.backwardMethod ?? 'heun',
        });
        if (traj) stats.innerGradients += traj.recomputeStats.nfe;
        stats.hvps += result.vjpCalls;

        // 4. dJ/dθ = λ(0) [+ μ∫λ dt].
        const gradient = result.paramGradient ? ops.add(result.gradient, result.paramGradient) : result.gradient;
        if (!intermediates) return { gradient, outerLoss, stats };
        if (!losses.has(0)) losses.set(0, lossValue(inner, theta)); // Euler's sweep never visits u(t_0) = θ
        return {
          gradient,
          outerLoss,
          stats,
          adapted: uT,
          innerLosses: await readLosses(times.map((_, k) => losses.get(k)!)),
        };
      } finally {
        raw.dispose([...losses.values()]);
      }
    }),
  );
  return learner;
}
