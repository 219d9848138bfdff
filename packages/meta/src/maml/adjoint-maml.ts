/** @file Adjoint-MAML (Li et al. 2023): gradient flow forward with an ODE solver tracking states, the adjoint ODE backward with Heun over reusable HVPs. */
import * as raw from '@metagrad/tensor';
import { InvalidArgumentError, type Tensor } from '@metagrad/tensor';
import { HvpOperator } from '@metagrad/autograd';
import { type ParamTree, flattenTree, fromLeaves, leaves, unflattenTree } from '@metagrad/models';
import { adjointGradient, type AdjointMethod, type AdjointResult } from '../ode/adjoint';
import { odeintDetailed, type OdeMethod } from '../ode/odeint';
import type { OdeFunc } from '../ode/steppers';
import { treeVectorOps } from '../ode/tensor-ops';
import { solveTracked } from '../ode/track';
import { release } from '../ode/vector-ops';
import { checkNonNegative, checkPositive, disposeTree, evalLoss, lossGradient } from './inner';
import { type MetaGradient, type MetaLearner, type MetaProblem, newMetaStats } from './types';

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
}

/**
 * The meta-gradient of J(u(T)) w.r.t. u(0) = θ for the gradient flow du/dt = f(u) = −∇L(u) [− μ(u − θ)]:
 *  1. solve forward to T, tracking u on the grid t_k = k·h (dopri5's dense output between its own steps, or
 *     landing on the grid when recomputing from checkpoints, so that stretches replay bit for bit);
 *  2. λ(T) = ∇J(u(T));
 *  3. solve dλ/dt = H(u)λ [+ μλ] backward with Heun over the tracked states (each state's gradient graph is built
 *     once in an HvpOperator and serves both products that touch it);
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
  const method = options.forwardMethod ?? 'dopri5';
  const rtol = options.rtol ?? 1e-5;
  const atol = options.atol ?? 1e-6;
  const flatten = options.flatten ?? true;
  const learner: MetaLearner = {
    name: 'A-MAML',
    async metaGradient<P extends ParamTree, D>(problem: MetaProblem<P, D>, theta: P, task: D): Promise<MetaGradient<P>> {
      if (flatten && !isTensor(theta)) {
        const flatTheta = flattenTree(theta);
        try {
          const r = await learner.metaGradient(flatProblem(problem, theta), flatTheta, task);
          const gradient = unflattenTree(r.gradient, theta);
          r.gradient.dispose();
          return { ...r, gradient };
        } finally {
          flatTheta.dispose();
        }
      }
      const stats = newMetaStats();
      stats.innerSteps = n;
      const ops = treeVectorOps<P>();
      const inner = (p: P): Tensor => problem.innerLoss(p, task);
      const f: OdeFunc<P> = (_t, u) => {
        const g = lossGradient(inner, u);
        const out = mu > 0 ? proximalFlow(g, u, theta, mu) : ops.scale(g, -1);
        disposeTree(g);
        return out;
      };
      // One HvpOperator per tracked state: Heun asks for H(u_j) twice in a row (λ̃_j, then λ_j), so one slot suffices.
      let cached: { u: P; op: HvpOperator } | undefined;
      const hvpAt = (u: P): HvpOperator => {
        if (cached?.u !== u) {
          cached?.op.dispose();
          cached = { u, op: new HvpOperator((...ls: Tensor[]) => inner(fromLeaves(u, ls)), leaves(u)) };
        }
        return cached.op;
      };
      const vjpF = (u: P, _t: number, lambda: P): P => {
        const hv = hvpAt(u).apply(leaves(lambda));
        const ll = leaves(lambda);
        // (∂f/∂u)ᵀλ = −Hλ − μλ
        const out = fromLeaves(lambda, hv.map((x, i) => {
          if (mu === 0) return raw.mulScalar(x, -1);
          const a = raw.mulScalar(ll[i], mu);
          const r = raw.add(x, a);
          a.dispose();
          const neg = raw.mulScalar(r, -1);
          r.dispose();
          return neg;
        }));
        hv.forEach((t) => t.dispose());
        return out;
      };
      const paramVjp = mu > 0 ? (_u: P, _t: number, lambda: P): P => ops.scale(lambda, mu) : undefined;
      const times = Array.from({ length: n + 1 }, (_, k) => (k === n ? T : k * h));
      const solverOpts = { method, rtol, atol, ops, stepSize: h, maxSteps: options.maxSteps };

      let states: P[] | undefined;
      let traj: Awaited<ReturnType<typeof solveTracked<P>>> | undefined;
      let dJ: P | undefined;
      let result: AdjointResult<P> | undefined;
      try {
        let final: P;
        if (options.recompute) {
          traj = await solveTracked(f, theta, T, { ...solverOpts, nStates: n, recompute: true, checkpointEvery: options.checkpointEvery });
          stats.innerGradients += traj.stats.nfe;
          final = traj.final;
        } else {
          const solved = await odeintDetailed(f, theta, times, solverOpts);
          states = solved.ys;
          stats.innerGradients += solved.stats.nfe;
          final = states[n];
        }
        dJ = lossGradient((p: P) => problem.outerLoss(p, task), final);
        const outerLoss = await evalLoss((p: P) => problem.outerLoss(p, task), final);
        result = await adjointGradient<P>({
          ...(traj ? { trajectory: traj } : { states, times }),
          dJdUT: dJ, vjpF, paramVjp, ops, method: options.backwardMethod ?? 'heun',
        });
        if (traj) stats.innerGradients += traj.recomputeStats.nfe;
        stats.hvps += result.vjpCalls;
        let gradient = result.gradient;
        if (result.paramGradient) {
          gradient = ops.add(result.gradient, result.paramGradient);
          release(ops, result.gradient, result.paramGradient);
        }
        return { gradient, outerLoss, stats };
      } finally {
        cached?.op.dispose();
        if (states) release(ops, ...states);
        traj?.dispose();
        if (dJ) release(ops, dJ);
      }
    },
  };
  return learner;
}

function isTensor(x: ParamTree): x is Tensor {
  return x instanceof raw.Tensor;
}

/** The problem over one flat vector: the losses see `like`'s tree, sliced (differentiably) out of the vector. */
function flatProblem<P extends ParamTree, D>(problem: MetaProblem<P, D>, like: P): MetaProblem<Tensor, D> {
  const lift = (loss: (p: P, task: D) => Tensor) => (v: Tensor, task: D): Tensor => {
    const tree = unflattenTree(v, like);
    try {
      return loss(tree, task);
    } finally {
      disposeTree(tree);
    }
  };
  return { innerLoss: lift((p, t) => problem.innerLoss(p, t)), outerLoss: lift((p, t) => problem.outerLoss(p, t)) };
}

/** −g − μ(u − θ) leafwise. */
function proximalFlow<P extends ParamTree>(g: P, u: P, theta: P, mu: number): P {
  const ul = leaves(u);
  const tl = leaves(theta);
  return fromLeaves(g, leaves(g).map((gi, i) => raw.tidy(() => raw.neg(raw.add(gi, raw.mulScalar(raw.sub(ul[i], tl[i]), mu))))));
}
