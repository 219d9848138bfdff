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
 *
 * Compiled (the default, `compile: false` opts out): a method with a readback-free online core (FO, 1-step,
 * HyperDistill) runs each inner step — the SGD step, the step's hypergradient, its norm and the training loss — as
 * one compiled replay, then reads [L_V, ‖hypergradient‖] (one readback, as before), checks it and steps Adam outside
 * the replay, so a NaN/Inf update still leaves λ and Adam's state as they were. A method with an offline core
 * (DrMAD) or none at all runs the whole inner optimisation with its end-of-episode hypergradient as one replay,
 * checked the same way. Other methods (Neumann, online RMD, user methods with only `step`) run as before.
 */
import { InvalidArgumentError, dispose, tidy, type Device, type Tensor } from '@metagrad/tensor';
import { Adam, disposeTree, leaves, normTree, sgd, type FunctionalOptimizer, type ParamTree, type SgdState } from '@metagrad/models';
import { compiledOrEager } from '../compiled';
import { compile, noGrad, type CompiledFunction, type CompileStats } from '@metagrad/autograd';
import type { BilevelProblem, HypergradResult } from '../hypergrad/types';
import { NonFiniteGradientError } from '../errors';
import { checkInnerOptimiser, runInner, runInnerTensors, type InnerOptimiser } from './inner';
import { checkHypergradNorm, type CheckedHypergradResult } from './checked';
import { readScalars } from '../hypergrad/readback';
import { lincombTree, trainLossAndGradient, zerosTree } from './products';
import { trajectoryInput, type EpisodeContext, type HyperMethod, type OnlineStepCore } from './methods';

/** A meta-batch's data for one inner optimisation. */
export interface Episode<Batch> {
  /** D_1 … D_T. */
  trainBatches: readonly Batch[];
  valBatch: Batch;
  dispose(): void;
}

export interface EpisodicOptions<Batch> {
  problem: BilevelProblem<ParamTree, ParamTree, Batch>;
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
  /**
   * Replay the inner steps with their hypergradients as compiled functions (default true; see the file comment and
   * `compile` in @metagrad/autograd). A TraceError switches the trainer to eager episodes, with the reason in
   * `compileFallback`.
   */
  compile?: boolean;
}

/** One compiled inner step: w_t, the momentum buffer, the step's hypergradient with what its check reads, and L_T. */
interface StepTensors {
  w: ParamTree;
  buf: ParamTree | null;
  hypergrad: ParamTree;
  valLoss: Tensor;
  hypergradNorm: Tensor;
  /** L_T(w_{t−1}) and ‖∇_w L_T‖ (the last step's feed checkedValLoss). */
  loss: Tensor;
  gradNorm: Tensor;
}

/** One compiled inner optimisation: w_T, the last step's L_T and ‖∇_w L_T‖, and the offline hypergradient if any. */
interface LoopTensors {
  wT: ParamTree;
  loss: Tensor;
  gradNorm: Tensor;
  hyper: { hypergrad: ParamTree; valLoss: Tensor; hypergradNorm: Tensor; jvps: number; hvps: number } | null;
}

type StepFn<Batch> = (w: ParamTree, buf: ParamTree | null, batch: Batch, valBatch: Batch, args: unknown) => StepTensors;
type LoopFn<Batch> = (w0: ParamTree, batches: readonly Batch[], valBatch: Batch) => LoopTensors;

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
  /** Why this trainer fell back to eager episodes (a TraceError's message), or null. */
  compileFallback: string | null = null;
  /** Which compiled path the method takes: per inner step (online core), per inner optimisation (offline or none), or eager. */
  private readonly mode: 'step' | 'loop' | 'eager';
  private stepCompiled: CompiledFunction<Parameters<StepFn<Batch>>, StepTensors> | null = null;
  private loopCompiled: CompiledFunction<Parameters<LoopFn<Batch>>, LoopTensors> | null = null;
  private readonly sgd: FunctionalOptimizer<SgdState>;

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
    this.sgd = sgd({ lr: options.optimiser.lr, momentum: options.optimiser.momentum });
    const method = options.method;
    const compiled = options.compile ?? true;
    if (compiled && method.online) {
      this.mode = 'step';
      this.stepCompiled = compile<Parameters<StepFn<Batch>>, StepTensors>((w, buf, batch, val, args) => this.stepTensors(w, buf, batch, val, args), { device: this.device });
    } else if (compiled && !method.step && !method.begin && (!method.end || method.offline)) {
      this.mode = 'loop';
      this.loopCompiled = compile<Parameters<LoopFn<Batch>>, LoopTensors>((w0, batches, val) => this.loopTensors(w0, batches, val), { device: this.device });
    } else {
      this.mode = 'eager';
    }
  }

  /** The compiled unit's counters (eager, traced and replayed calls; dispatches per replay), or null when eager. */
  compileStats(): CompileStats | null {
    return (this.stepCompiled ?? this.loopCompiled)?.stats() ?? null;
  }

  /** Frees the compiled steps' plans (their arenas); later episodes run eagerly. */
  disposeCompiled(): void {
    this.stepCompiled?.dispose();
    this.loopCompiled?.dispose();
    this.stepCompiled = this.loopCompiled = null;
  }

  /** A TraceError from a compiled unit: eager episodes from now on, and why. */
  private fallBack(reason: string): void {
    this.compileFallback = reason;
    this.disposeCompiled();
  }

  /**
   * The compiled unit of an online method: runInner's heavy-ball step from w_{t−1} (the momentum buffer passed in;
   * zeros before the first step, which equals torch's first-step rule) and the method's hypergradient after it.
   */
  private stepTensors(w: ParamTree, buf: ParamTree | null, batch: Batch, valBatch: Batch, args: unknown): StepTensors {
    const o = this.o;
    const core = o.method.online as OnlineStepCore<Batch>;
    return tidy(() => {
      const lg = trainLossAndGradient(o.problem, w, this.lambda, batch);
      const gradNorm = noGrad(() => normTree(lg.gradient));
      const next = noGrad(() => this.sgd.step(w, lg.gradient, { step: 0, momentum: buf }));
      const h = core.tensors({ problem: o.problem, lambda: this.lambda, valBatch, innerLr: o.optimiser.lr, wPrev: w, w: next.params, batch }, args);
      const hypergradNorm = noGrad(() => normTree(h.hypergrad));
      return { w: next.params, buf: next.state.momentum, hypergrad: h.hypergrad, valLoss: h.loss, hypergradNorm, loss: lg.loss, gradNorm };
    });
  }

  /** The compiled unit of an offline method (or none): the whole inner optimisation and the end hypergradient. */
  private loopTensors(w0: ParamTree, batches: readonly Batch[], valBatch: Batch): LoopTensors {
    const o = this.o;
    return tidy(() => {
      const run = runInnerTensors({ problem: o.problem, lambda: () => this.lambda, w0, batches, optimiser: o.optimiser });
      let hyper: LoopTensors['hyper'] = null;
      if (o.method.offline) {
        const ctx = this.context({ trainBatches: batches, valBatch, dispose: () => {} }, w0);
        const r = o.method.offline.tensors(trajectoryInput(ctx, w0, run.wT, batches, valBatch));
        hyper = { hypergrad: r.hypergrad, valLoss: r.valLoss, hypergradNorm: noGrad(() => normTree(r.hypergrad)), jvps: r.stats.jvps, hvps: r.stats.hvps };
      }
      return { wT: run.wT, loss: run.last.loss, gradNorm: run.last.gradNorm, hyper };
    });
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
      if (this.mode === 'step') {
        ({ wT, last } = await this.compiledSteps(ctx, episode, w0, m, (n) => {
          jvps += method.online!.stats.jvps;
          hvps += method.online!.stats.hvps;
          normSum += n;
          updates++;
        }));
      } else if (this.mode === 'loop') {
        const out = await compiledOrEager(this.loopCompiled, (a: ParamTree, b: readonly Batch[], c: Batch) => this.loopTensors(a, b, c), (r) => this.fallBack(r), w0, episode.trainBatches, episode.valBatch);
        wT = out.wT;
        last = { loss: out.loss, gradNorm: out.gradNorm };
        if (out.hyper) {
          const h = out.hyper;
          try {
            const [valLoss, norm] = await readScalars([h.valLoss, h.hypergradNorm]);
            jvps += h.jvps;
            hvps += h.hvps;
            checkHypergradNorm(method.name, norm, valLoss, `at the end of inner optimisation ${m}`);
            normSum += norm;
            this.adam.step(h.hypergrad);
            updates++;
          } finally {
            disposeTree(h.hypergrad);
            dispose([h.valLoss, h.hypergradNorm]);
          }
        }
      } else {
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
      }
      if (method.end && this.mode !== 'loop') await apply(await method.end(ctx, wT), 'at the end');
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
   * The inner optimisation of an online method as compiled steps: per step t, the core's host work, one replay
   * (SGD step + hypergradient + norms), then [L_V, ‖hypergradient‖] read, checked and applied by Adam outside it.
   * Returns w_T and the last step's L_T and ‖∇_w L_T‖ (owned by the caller).
   */
  private async compiledSteps(
    ctx: EpisodeContext<Batch>, episode: Episode<Batch>, w0: ParamTree, m: number, applied: (norm: number) => void,
  ): Promise<{ wT: ParamTree; last: { loss: Tensor; gradNorm: Tensor } }> {
    const method = this.o.method;
    const core = method.online as OnlineStepCore<Batch>;
    const batches = episode.trainBatches;
    const T = batches.length;
    if (T === 0) throw new InvalidArgumentError('EpisodicTrainer: the episode has no training batches (T = 0)');
    const eager: StepFn<Batch> = (a, b, c, d, e) => this.stepTensors(a, b, c, d, e);
    let w = w0;
    let buf: ParamTree | null = this.o.optimiser.momentum !== 0 ? zerosTree(w0) : null;
    let last: { loss: Tensor; gradNorm: Tensor } | null = null;
    try {
      for (let t = 1; t <= T; t++) {
        const batch = batches[t - 1];
        const prep = core.prepare ? core.prepare(ctx, t, w, batch) : { args: null, owned: [] };
        let out: StepTensors;
        try {
          out = await compiledOrEager(this.stepCompiled, eager, (r) => this.fallBack(r), w, buf, batch, episode.valBatch, prep.args);
        } finally {
          dispose(prep.owned);
        }
        if (w !== w0) disposeTree(w);
        if (buf) disposeTree(buf);
        w = out.w;
        buf = out.buf;
        try {
          const [valLoss, norm] = await readScalars([out.valLoss, out.hypergradNorm]);
          checkHypergradNorm(method.name, norm, valLoss, `at inner step ${t} of inner optimisation ${m}`);
          this.adam.step(out.hypergrad);
          applied(norm);
        } finally {
          disposeTree(out.hypergrad);
          dispose([out.valLoss, out.hypergradNorm]);
          if (t === T) last = { loss: out.loss, gradNorm: out.gradNorm };
          else dispose([out.loss, out.gradNorm]);
        }
      }
      return { wT: w, last: last! };
    } catch (e) {
      if (w !== w0) disposeTree(w);
      if (last) dispose([last.loss, last.gradNorm]);
      core.release?.();
      throw e;
    } finally {
      if (buf) disposeTree(buf);
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
    this.disposeCompiled();
    this.adam.dispose();
    disposeTree(this.phi);
    this.o.method.dispose?.();
  }
}
