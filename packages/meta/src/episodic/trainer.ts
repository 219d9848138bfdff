/** @file EpisodicTrainer: the HyperDistill paper's outer loop (inner SGD-momentum optimisation, online λ updates by Adam, Reptile on φ). */
/*
 * The episodic outer loop (Algorithm 3's frame): for each inner optimisation m, w_0 ← φ (one copy per task of
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
 * Compiled (the default, `compile: false` opts out): see inner-runs.ts for which unit each method replays. The finite
 * checks and λ's update stay outside the replays, so a NaN/Inf update still leaves λ and Adam's state as they were.
 *
 * Memory: an episode runs in one scope and each inner step in its own (inner-runs.ts), so what survives an episode
 * is the new φ (which replaces the old one) and λ's in-place update.
 */
import { InvalidArgumentError, type Device, type Tensor } from '@metagrad/tensor';
import { Adam, normTree, sgd, tree, type FunctionalOptimizer, type ParamTree, type SgdState } from '@metagrad/models';
import { compile, noGrad, type CompiledFunction, type CompileStats } from '@metagrad/autograd';
import { compiledOrEager } from '../compiled';
import { NonFiniteGradientError } from '../errors';
import { readScalars } from '../hypergrad/readback';
import { checkInnerOptimiser, lincombTree, type EpisodeContext } from '../core';
import { carryAsync } from '../core/loop';
import type { Episode, EpisodeRecord, EpisodicOptions } from './episode';
import { LambdaUpdates, checkHyperLr } from './updates';
import {
  compiledEpisode,
  compiledSteps,
  eagerInner,
  onlineStep,
  wholeEpisode,
  type EpisodeArgs,
  type EpisodeTensors,
  type InnerOutcome,
  type StepArgs,
  type StepTensors,
  type UnitContext,
} from './inner-runs';

export class EpisodicTrainer<Batch> {
  phi: ParamTree;
  readonly lambda: ParamTree;
  private readonly adam: Adam;
  private readonly o: EpisodicOptions<Batch>;
  private m = 0;
  private readonly device: Device;
  /** Why this trainer fell back to eager episodes (a TraceError's message), or null. */
  compileFallback: string | null = null;
  /** Which compiled unit the method runs as: per inner step (online core), per inner optimisation (offline or none), or none (eager). */
  private readonly mode: 'step' | 'episode' | 'eager';
  private readonly unit: UnitContext<Batch>;
  private stepCompiled: CompiledFunction<StepArgs<Batch>, StepTensors> | null = null;
  private episodeCompiled: CompiledFunction<EpisodeArgs<Batch>, EpisodeTensors> | null = null;

  constructor(options: EpisodicOptions<Batch>) {
    checkInnerOptimiser('EpisodicTrainer', options.optimiser);
    checkHyperLr(options.hyperLr);
    if (!(Number.isFinite(options.reptileLr) && options.reptileLr >= 0 && options.reptileLr <= 1)) {
      throw new InvalidArgumentError(`EpisodicTrainer: reptileLr must be in [0, 1], got ${options.reptileLr}`);
    }
    this.o = options;
    this.lambda = options.lambda;
    this.phi = tree.clone(options.phi);
    this.adam = new Adam(options.lambda, { lr: options.hyperLr });
    this.device = tree.leaves(options.lambda)[0].device;
    const heavyBall: FunctionalOptimizer<SgdState> = sgd({
      lr: options.optimiser.lr,
      momentum: options.optimiser.momentum,
    });
    this.unit = { problem: options.problem, lambda: options.lambda, optimiser: options.optimiser, sgd: heavyBall };
    const { method } = options;
    const compiled = options.compile ?? true;
    if (compiled && method.online) {
      this.mode = 'step';
      this.stepCompiled = compile((...a: StepArgs<Batch>) => onlineStep(this.unit, method.online!, ...a), {
        device: this.device,
      });
    } else if (compiled && !method.step && !method.begin && (!method.end || method.offline)) {
      this.mode = 'episode';
      this.episodeCompiled = compile((...a: EpisodeArgs<Batch>) => wholeEpisode(this.unit, method, ...a), {
        device: this.device,
      });
    } else {
      this.mode = 'eager';
    }
  }

  /** The compiled unit's counters (eager, traced and replayed calls; dispatches per replay), or null when eager. */
  /** λ's Adam learning rate from the next update on: a schedule over inner optimisations (E5's linear decay). */
  setHyperLr(lr: number): void {
    this.adam.lr = checkHyperLr(lr);
  }
  compileStats(): CompileStats | null {
    return (this.stepCompiled ?? this.episodeCompiled)?.stats() ?? null;
  }

  /** Frees the compiled units' plans (their arenas); later episodes run eagerly. */
  disposeCompiled(): void {
    this.stepCompiled?.dispose();
    this.episodeCompiled?.dispose();
    this.stepCompiled = this.episodeCompiled = null;
  }

  /** A TraceError from a compiled unit: eager episodes from now on, and why. */
  private fallBack(reason: string): void {
    this.compileFallback = reason;
    this.disposeCompiled();
  }

  /** The context of the next inner optimisation on this episode (also used by diagnostics). */
  context(episode: Episode<Batch>, w0: ParamTree, m = this.m + 1, diagnostic = false): EpisodeContext<Batch> {
    return {
      m,
      problem: this.o.problem,
      lambda: this.lambda,
      w0,
      trainBatches: episode.trainBatches,
      valBatch: episode.valBatch,
      optimiser: this.o.optimiser,
      diagnostic,
    };
  }

  /** One inner optimisation with online/offline λ updates and the Reptile step φ ← (1 − η_R) φ + η_R target(w_T). */
  async runEpisode(episode: Episode<Batch>): Promise<EpisodeRecord> {
    const m = ++this.m;
    const { method, reptileLr: eta } = this.o;
    this.device.resetPeak();
    const t0 = performance.now();
    let record!: EpisodeRecord;
    this.phi = await carryAsync(this.phi, async (phi) => {
      const ctx = this.context(episode, this.o.initialWeights(phi), m);
      const updates = new LambdaUpdates(this.adam, method.name, m);
      if (method.begin) await method.begin(ctx);
      const { wT, last } = await this.innerOptimisation(ctx, updates);
      if (method.end && this.mode !== 'episode') await updates.applyResult(await method.end(ctx, wT), 'at the end');
      const valLoss = await this.checkedValLoss(m, wT, episode.valBatch, last, episode.trainBatches.length);
      const next = lincombTree(1 - eta, phi, eta, this.o.reptileTarget(wT));
      record = {
        m,
        valLoss,
        updates: updates.updates,
        jvps: updates.jvps,
        hvps: updates.hvps,
        fitJvps: method.beginJvps ?? 0,
        ms: performance.now() - t0,
        peakBytes: this.device.memory().peakBytesInUse,
        ...(this.o.logHypergradNorm ? { hypergradNorm: updates.meanNorm } : {}),
      };
      return next;
    });
    return record;
  }

  private innerOptimisation(ctx: EpisodeContext<Batch>, updates: LambdaUpdates): Promise<InnerOutcome> {
    const fallBack = (reason: string): void => this.fallBack(reason);
    if (this.mode === 'step') {
      const core = this.o.method.online!;
      return compiledSteps(ctx, core, updates, (...a) =>
        compiledOrEager(this.stepCompiled, (...b: StepArgs<Batch>) => onlineStep(this.unit, core, ...b), fallBack, ...a),
      );
    }
    if (this.mode === 'episode') {
      return compiledEpisode(ctx, updates, (...a) =>
        compiledOrEager(this.episodeCompiled, (...b: EpisodeArgs<Batch>) => wholeEpisode(this.unit, this.o.method, ...b), fallBack, ...a),
      );
    }
    return eagerInner(ctx, this.o.method, updates);
  }

  /**
   * L_V(w_T, λ), read in one readback with the inner optimisation's last training loss, its ‖gradient‖ and ‖w_T‖:
   * any of those NaN/Inf is a NonFiniteGradientError (before the Reptile step, so φ stays as it was).
   */
  private async checkedValLoss(m: number, wT: ParamTree, batch: Batch, last: { loss: Tensor; gradNorm: Tensor } | null, T: number): Promise<number> {
    const l = this.o.problem.valLoss(wT, this.lambda, batch);
    const wNorm = noGrad(() => normTree(wT));
    const [valLoss, norm, trainLoss, gradNorm] = await readScalars(last ? [l, wNorm, last.loss, last.gradNorm] : [l, wNorm]);
    if (!Number.isFinite(norm) || (last && !(Number.isFinite(trainLoss) && Number.isFinite(gradNorm)))) {
      throw new NonFiniteGradientError(
        `EpisodicTrainer inner optimisation ${m} (‖w_T‖ = ${norm}; Reptile step skipped, φ unchanged), last inner step`,
        T,
        trainLoss ?? NaN,
        gradNorm ?? NaN,
      );
    }
    return valLoss;
  }

  dispose(): void {
    this.disposeCompiled();
    this.adam.dispose();
    tree.dispose(this.phi);
    this.o.method.dispose?.();
  }
}
