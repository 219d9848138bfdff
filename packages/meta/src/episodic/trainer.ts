/**
 * @file The episodic outer loop (Algorithm 3's frame): for each inner optimisation m, w_0 ← φ (one copy per task of
 * the meta-batch), T inner steps of heavy-ball SGD with λ updated online by the method's hypergradients (Adam),
 * then Reptile on the initialisation, φ ← φ − η_R (φ − mean_tasks w_T). Records per inner optimisation the JVPs/HVPs,
 * wall time and peak memory the method needed.
 *
 * Never silently NaN: a hypergradient whose norm is NaN/Inf is a NonFiniteHypergradientError before Adam sees it
 * (λ and Adam's state unchanged); the norm comes with the estimator's own readback where it has one (FO, HyperDistill,
 * DrMAD, Reverse-HG, online RMD) and costs one readback per update otherwise (the implicit methods). A NaN/Inf inner
 * optimisation (last step's loss or gradient, or w_T) is a NonFiniteGradientError before the Reptile step (φ
 * unchanged), read in the validation loss's readback.
 */
import { InvalidArgumentError, type Device, type Tensor } from '@metagrad/tensor';
import { Adam, disposeTree, leaves, normTree, type ParamTree } from '@metagrad/models';
import { noGrad } from '@metagrad/autograd';
import type { BilevelProblem, HypergradResult } from '../hypergrad/types';
import { NonFiniteGradientError } from '../errors';
import { checkInnerOptimiser, runInner, type InnerOptimiser } from './inner';
import { checkHypergradNorm, type CheckedHypergradResult } from './checked';
import { readScalars } from '../hypergrad/readback';
import { lincombTree } from './products';
import type { EpisodeContext, HyperMethod } from './methods';

/** A meta-batch's data for one inner optimisation. */
export interface Episode<Batch> {
  /** D_1 … D_T. */
  trainBatches: readonly Batch[];
  valBatch: Batch;
  dispose(): void;
}

export interface EpisodicOptions<Batch> {
  problem: BilevelProblem<Batch>;
  /** λ: updated in place by Adam (the caller keeps ownership). */
  lambda: ParamTree;
  /** φ: the initial initialisation (copied; `phi` holds the current one). */
  phi: ParamTree;
  /** w_0 for the episode's tasks from φ (e.g. φ repeated along a task dimension); a new tree. */
  initialWeights(phi: ParamTree): ParamTree;
  /** The Reptile target shaped like φ from w_T (e.g. the mean over tasks); a new tree. */
  reptileTarget(wT: ParamTree): ParamTree;
  optimiser: InnerOptimiser;
  /** Adam learning rate for λ (the paper: 1e-3). */
  hyperLr: number;
  /** Reptile step η_R (the paper: 1). */
  reptileLr: number;
  method: HyperMethod<Batch>;
  /**
   * Record the mean ‖hypergradient‖ per inner optimisation (default false). The norm is now read for the finite
   * check anyway (with the estimator's loss, or on its own for the implicit methods), so this costs nothing more.
   */
  logHypergradNorm?: boolean;
}

export interface EpisodeRecord {
  m: number;
  /** L_V(w_T, λ) after the inner optimisation (λ as updated during it). */
  valLoss: number;
  /** Hypergradient updates applied to λ. */
  updates: number;
  jvps: number;
  hvps: number;
  /** JVPs of the method's `begin` (LinearEstimation), when it ran. */
  fitJvps: number;
  /** Wall time of the inner optimisation with its hypergradients (and any fit), ms. */
  ms: number;
  /** Peak bytes in use during it. */
  peakBytes: number;
  /** Mean ‖hypergradient‖ over the updates (only with `logHypergradNorm`). */
  hypergradNorm?: number;
}

export class EpisodicTrainer<Batch> {
  phi: ParamTree;
  readonly lambda: ParamTree;
  private readonly adam: Adam;
  private readonly o: EpisodicOptions<Batch>;
  private m = 0;
  private readonly device: Device;

  constructor(options: EpisodicOptions<Batch>) {
    checkInnerOptimiser('EpisodicTrainer', options.optimiser);
    if (!(Number.isFinite(options.hyperLr) && options.hyperLr > 0)) throw new InvalidArgumentError(`EpisodicTrainer: hyperLr must be > 0, got ${options.hyperLr}`);
    if (!(Number.isFinite(options.reptileLr) && options.reptileLr >= 0 && options.reptileLr <= 1)) {
      throw new InvalidArgumentError(`EpisodicTrainer: reptileLr must be in [0, 1], got ${options.reptileLr}`);
    }
    this.o = options;
    this.lambda = options.lambda;
    this.phi = lincombTree(1, options.phi, 0, options.phi);
    this.adam = new Adam(options.lambda, { lr: options.hyperLr });
    this.device = leaves(options.lambda)[0].device;
  }

  /** The context of the next inner optimisation on this episode (also used by diagnostics). */
  context(episode: Episode<Batch>, w0: ParamTree, m = this.m + 1, diagnostic = false): EpisodeContext<Batch> {
    return { m, problem: this.o.problem, lambda: this.lambda, w0, trainBatches: episode.trainBatches, valBatch: episode.valBatch, optimiser: this.o.optimiser, diagnostic };
  }

  /** One inner optimisation with online/offline λ updates and the Reptile step. */
  async runEpisode(episode: Episode<Batch>): Promise<EpisodeRecord> {
    const m = ++this.m;
    const method = this.o.method;
    this.device.resetPeak();
    const t0 = performance.now();
    const w0 = this.o.initialWeights(this.phi);
    const ctx = this.context(episode, w0, m);
    let jvps = 0;
    let hvps = 0;
    let updates = 0;
    let normSum = 0;
    const apply = async (r: HypergradResult | null, where: string): Promise<void> => {
      if (!r) return;
      try {
        jvps += r.stats.jvps;
        hvps += r.stats.hvps;
        let norm = (r as Partial<CheckedHypergradResult>).hypergradNorm;
        if (norm === undefined) {
          const n = noGrad(() => normTree(r.hypergrad));
          try {
            norm = await n.item();
          } finally {
            n.dispose();
          }
        }
        checkHypergradNorm(method.name, norm, r.valLoss, `${where} of inner optimisation ${m}`);
        normSum += norm;
        this.adam.step(r.hypergrad);
        updates++;
      } finally {
        disposeTree(r.hypergrad);
      }
    };
    let wT: ParamTree | null = null;
    let last: { loss: Tensor; gradNorm: Tensor } | null = null;
    try {
      if (method.begin) await method.begin(ctx);
      const run = await runInner({
        problem: this.o.problem,
        lambda: () => this.lambda,
        w0,
        batches: episode.trainBatches,
        optimiser: this.o.optimiser,
        onStep: method.step ? async (s) => apply(await method.step!(ctx, s), `at inner step ${s.t}`) : undefined,
        trackLast: true,
      });
      wT = run.wT;
      last = run.last ?? null;
      if (method.end) await apply(await method.end(ctx, wT), 'at the end');
      const valLoss = await this.checkedValLoss(m, wT, episode.valBatch, last, episode.trainBatches.length);
      const target = this.o.reptileTarget(wT);
      const eta = this.o.reptileLr;
      const phi = lincombTree(1 - eta, this.phi, eta, target);
      disposeTree(target);
      disposeTree(this.phi);
      this.phi = phi;
      const ms = performance.now() - t0;
      return {
        m,
        valLoss,
        updates,
        jvps,
        hvps,
        fitJvps: method.beginJvps ?? 0,
        ms,
        peakBytes: this.device.memory().peakBytesInUse,
        ...(this.o.logHypergradNorm ? { hypergradNorm: updates ? normSum / updates : 0 } : {}),
      };
    } finally {
      if (wT) disposeTree(wT);
      if (last) disposeTree([last.loss, last.gradNorm]);
      disposeTree(w0);
    }
  }

  /**
   * L_V(w_T, λ), read in one readback with the inner optimisation's last training loss, its ‖gradient‖ and ‖w_T‖:
   * any of those NaN/Inf is a NonFiniteGradientError (before the Reptile step, so φ stays as it was).
   */
  private async checkedValLoss(m: number, wT: ParamTree, batch: Batch, last: { loss: Tensor; gradNorm: Tensor } | null, T: number): Promise<number> {
    const l = this.o.problem.valLoss(wT, this.lambda, batch);
    const wNorm = noGrad(() => normTree(wT));
    try {
      const [valLoss, norm, trainLoss, gradNorm] = await readScalars(last ? [l, wNorm, last.loss, last.gradNorm] : [l, wNorm]);
      if (!Number.isFinite(norm) || (last && !(Number.isFinite(trainLoss) && Number.isFinite(gradNorm)))) {
        throw new NonFiniteGradientError(`EpisodicTrainer inner optimisation ${m} (‖w_T‖ = ${norm}; Reptile step skipped, φ unchanged), last inner step`, T, trainLoss ?? NaN, gradNorm ?? NaN);
      }
      return valLoss;
    } finally {
      l.dispose();
      wNorm.dispose();
    }
  }

  dispose(): void {
    this.adam.dispose();
    disposeTree(this.phi);
    this.o.method.dispose?.();
  }
}
