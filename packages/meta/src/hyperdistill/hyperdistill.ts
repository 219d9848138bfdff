/** @file HyperDistill (Lee et al., 2022; Algorithm 3): the online hypergradient at one JVP per inner step. */
/*
 * HyperDistill (Lee et al., 2022; Algorithm 3): one JVP per online step. The whole second-order term
 * g^SO_t = α_t dw_t/dλ is replaced by π*_t f_t(w*_t, D*_t), where
 *   - w*_t is the γ-weighted running average of w_0 … w_{t−1} (eq. 13),
 *   - D*_t is the proportionally subsampled batch (eq. 14),
 *   - f_t = σ(v_t), v_t = α_t ∂Φ(w*_t, λ; D*_t)/∂λ = −η ∂_λ⟨α_t, ∇_w L_T(w*_t, λ; D*_t)⟩ (the look-ahead B-product
 *     at the distilled point; the momentum buffer of Φ does not depend on λ and drops out),
 *   - π*_t = c_γ(t; θ) = θ ‖v_t‖ S_t (eq. 15), S_t = Σ γ^{t−i}, so π*_t f_t = θ S_t v_t (no norm is needed online).
 * θ is fitted by LinearEstimation (Algorithm 4) every `estimationPeriod` inner optimisations, unless a fixed `theta`
 * is given. With γ = 0 and θ = 1 every step equals the one-step look-ahead: w*_t = w_{t−1}, D*_t = D_t, S_t = 1.
 *
 * The estimator is stateful: call `reset()` before each inner optimisation, then `estimate()` once per inner step
 * with `theta` = w_{t−1}, `trainBatch` = D_t and, when the caller already took the step, `next` = w_t.
 * For compiled inner steps the same step comes in two parts: `onlineArgs()` (host work: w*, D*, the step's scale as
 * a tensor) outside the compiled call, then `onlineTensors()` (readback-free, no per-step host value) inside it.
 */
import { noGrad } from '@metagrad/autograd';
import { InvalidArgumentError, dispose, tensor, type Tensor } from '@metagrad/tensor';
import { Rng, tree, type ParamTree } from '@metagrad/models';
import { emptyStats, type HypergradEstimator, type HypergradInput, type HypergradResult } from '../hypergrad/types';
import { checkFinite, checkInnerLr, checkPositiveInt } from '../hypergrad/common';
import { carry, keepAll } from '../core/loop';
import { checkedEstimate, lincombTree, trainGradient, MissingBatchOpsError, type BatchOps } from '../core';
import { distillBatch } from './distilled-batch';
import { distilledLookahead } from './distilled-lookahead';
import { decaySum, onlineMix } from './weights';
import { checkMomentumJacobian, linearEstimation, type LinearEstimationInput, type LinearEstimationResult, type MomentumJacobian } from './linear-estimation';

export interface HyperDistillOptions<Batch> {
  /** Decay γ ∈ [0, 1] of the distilled trajectory (the paper tunes it in {0.9, 0.99, 0.999, 0.9999}). */
  gamma: number;
  /** Refit θ at inner optimisations 1, 1 + period, 1 + 2·period, … (the paper: 50). */
  estimationPeriod: number;
  /** How momentum enters LinearEstimation's backward Jacobians (default 'constant', see linear-estimation.ts). */
  momentumJacobian?: MomentumJacobian;
  /** A fixed θ instead of LinearEstimation (θ = 1 with γ = 0 is the one-step look-ahead; Appendix I fixes π = 1). */
  theta?: number;
  /** How to subsample and join batches when D_t changes between steps (eq. 14). */
  batchOps?: BatchOps<Batch>;
  /** Seed of the subsampling. */
  seed?: number;
}

/** One online step's input: theta = w_{t−1}; `next` = w_t if the caller already stepped (else a plain SGD look-ahead). */
export interface HyperDistillInput<Batch> extends HypergradInput<ParamTree, ParamTree, Batch> {
  trainBatch: Batch;
  innerLr: number;
  next?: ParamTree;
}

/** What `onlineArgs` hands the compiled step: w*_t, D*_t and θ·S_t as a one-element tensor. */
export interface HyperDistillStepArgs<Batch> {
  wStar: ParamTree;
  dStar: Batch;
  scale: Tensor;
}

/** The running point of the current inner optimisation after t steps: w*_t and D*_t (eq. 13–14), kept across steps. */
interface Distilled<Batch> {
  t: number;
  wStar: ParamTree | null;
  dStar: Batch | null;
  /** Whether D* was merged here (ours) rather than being the caller's D_t. */
  ownsBatch: boolean;
}

const fresh = <Batch>(): Distilled<Batch> => ({ t: 0, wStar: null, dStar: null, ownsBatch: false });

export class HyperDistill<Batch> implements HypergradEstimator<Batch> {
  readonly name: string;
  readonly gamma: number;
  readonly estimationPeriod: number;
  /** The current θ of c_γ(t; θ) (1 until the first fit when none is fixed). */
  theta: number;
  readonly fixedTheta: boolean;
  readonly momentumJacobian: MomentumJacobian;
  private readonly batchOps?: BatchOps<Batch>;
  private readonly rng: Rng;
  private running: Distilled<Batch> = fresh();
  /** The last LinearEstimation, for logging. */
  lastFit: LinearEstimationResult | null = null;
  /** Work of one compiled online step (`onlineTensors`): as `estimate` with `next` given. */
  static readonly onlineStats = { ...emptyStats(), gradients: 2, forwards: 2, jvps: 1 };

  constructor(options: HyperDistillOptions<Batch>) {
    checkFinite('HyperDistill', 'gamma', options.gamma, (v) => v >= 0 && v <= 1, 'in [0, 1]');
    checkPositiveInt('HyperDistill', 'estimationPeriod', options.estimationPeriod);
    if (options.theta !== undefined) checkFinite('HyperDistill', 'theta', options.theta, () => true, 'finite');
    this.gamma = options.gamma;
    this.estimationPeriod = options.estimationPeriod;
    this.theta = options.theta ?? 1;
    this.fixedTheta = options.theta !== undefined;
    this.momentumJacobian = checkMomentumJacobian('HyperDistill', options.momentumJacobian);
    this.batchOps = options.batchOps;
    this.rng = new Rng(options.seed ?? 0);
    this.name = `hyperdistill(γ=${options.gamma})`;
  }

  /** Whether inner optimisation m (1-based) is one where θ is refitted. */
  shouldEstimate(m: number): boolean {
    if (!(Number.isInteger(m) && m >= 1)) throw new InvalidArgumentError(`HyperDistill.shouldEstimate: m must be an integer ≥ 1, got ${m}`);
    return !this.fixedTheta && (m - 1) % this.estimationPeriod === 0;
  }

  /** Algorithm 4 at the current λ and initialisation; sets θ (unless fixed) and returns the samples. */
  async fit(input: Omit<LinearEstimationInput<Batch>, 'gamma' | 'batchOps' | 'rng' | 'momentumJacobian'>): Promise<LinearEstimationResult> {
    const result = await linearEstimation({
      ...input,
      gamma: this.gamma,
      momentumJacobian: this.momentumJacobian,
      batchOps: this.batchOps,
      rng: this.rng,
    });
    if (!this.fixedTheta) this.theta = result.theta;
    this.lastFit = result;
    return result;
  }

  /** Forget the running w*, D* (start of an inner optimisation). */
  reset(): void {
    const { wStar, dStar, ownsBatch } = this.running;
    dispose([wStar, ownsBatch ? dStar : null]);
    this.running = fresh();
  }

  dispose(): void {
    this.reset();
  }

  /** Steps taken in the current inner optimisation. */
  get step(): number {
    return this.running.t;
  }

  /** Eq. 13 and 14 with w_{t−1} and D_t: the new w*, D* replace (and free) the old ones; both outlive the caller's scope. */
  private advance(wPrev: ParamTree, batch: Batch): Distilled<Batch> {
    const old = this.running;
    const t = old.t + 1;
    const p = onlineMix(this.gamma, t);
    const merge = t > 1 && p !== 0 && old.dStar !== null && old.dStar !== batch;
    if (merge && !this.batchOps)
      throw new MissingBatchOpsError('HyperDistill: the training batch changed between steps; pass batchOps to build the distilled batch D* (eq. 14)');
    const next = (s: Distilled<Batch>): Distilled<Batch> => ({
      t,
      wStar: t === 1 || !s.wStar || p === 0 ? tree.clone(wPrev) : lincombTree(p, s.wStar, 1 - p, wPrev), // eq. 13
      dStar: merge ? distillBatch(this.batchOps!, s.dStar!, batch, p, this.rng) : batch, // eq. 14
      ownsBatch: merge,
    });
    this.running = keepAll(carry(old, next, [batch, old.ownsBatch ? null : old.dStar]));
    return this.running;
  }

  async estimate(input: HyperDistillInput<Batch>): Promise<HypergradResult> {
    checkInnerLr('HyperDistill', input.innerLr);
    const t0 = performance.now();
    const { t, wStar, dStar } = this.advance(input.theta, input.trainBatch);
    const scale = this.theta * decaySum(this.gamma, t);
    return checkedEstimate(this.name, t0, () => {
      let next = input.next;
      if (!next) {
        // The plain SGD step the look-ahead assumes: w_t = w_{t−1} − η ∇L_T(w_{t−1}).
        const g = trainGradient(input.problem, input.theta, input.lambda, input.trainBatch);
        next = noGrad(() => tree.axpy(-input.innerLr, g, input.theta));
      }
      const { hypergrad, loss } = distilledLookahead(input, next, wStar!, dStar!, scale);
      const extra = input.next ? 0 : 1;
      return {
        hypergrad,
        valLoss: loss,
        stats: { ...HyperDistill.onlineStats, gradients: 2 + extra, forwards: 2 + extra },
      };
    });
  }

  /**
   * Part 1 of a compiled online step, run eagerly before it: eq. 13–14 with w_{t−1} = `wPrev` and D_t = `trainBatch`,
   * and the step's π-scale θ·S_t as a one-element tensor (freed by the caller's scope).
   */
  onlineArgs(wPrev: ParamTree, trainBatch: Batch): HyperDistillStepArgs<Batch> {
    const { t, wStar, dStar } = this.advance(wPrev, trainBatch);
    const device = tree.leaves(wPrev)[0].device;
    return { wStar: wStar!, dStar: dStar!, scale: tensor([this.theta * decaySum(this.gamma, t)], [1], 'f32', device) };
  }

  /**
   * Part 2, readback-free and with no host value that changes between steps (so it compiles): the hypergradient
   * after the inner step w_{t−1} → w_t = `next` and L_V where it was evaluated.
   */
  onlineTensors(
    input: Omit<HyperDistillInput<Batch>, 'theta' | 'trainBatch' | 'next'>,
    next: ParamTree,
    args: HyperDistillStepArgs<Batch>,
  ): { hypergrad: ParamTree; loss: Tensor } {
    checkInnerLr('HyperDistill', input.innerLr);
    return distilledLookahead(input, next, args.wStar, args.dStar, args.scale);
  }
}
