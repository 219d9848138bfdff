/** @file The three ways EpisodicTrainer runs one inner optimisation with its λ updates, and the pure units it compiles. */
/*
 * The three ways EpisodicTrainer runs one inner optimisation with its λ updates, and the pure units it
 * compiles:
 *   - `compiledSteps` (online cores: FO, 1-step, HyperDistill): per inner step one replay of `onlineStep` (the SGD
 *     step, the step's hypergradient, its norm and L_T), then [L_V, ‖g‖] read, checked and applied outside it;
 *   - `compiledEpisode` (an offline core or none: DrMAD): one replay of `wholeEpisode` (T steps and the
 *     end-of-episode hypergradient), checked and applied the same way;
 *   - `eagerInner` (Neumann, online RMD, user methods with only `step`): runInner with the method's step as hook.
 * Each step runs in a scope (`carryAsync`), so nothing but w_t, the momentum buffer and the last L_T survives it.
 */
import { noGrad } from '@metagrad/autograd';
import { InvalidArgumentError, tidy, type Tensor } from '@metagrad/tensor';
import { normTree, type FunctionalOptimizer, type ParamTree, type SgdState } from '@metagrad/models';
import { readScalars } from '../hypergrad/readback';
import { carryAsync } from '../core/loop';
import { runInner, runInnerTensors, trainLossAndGradient, zerosTree, type EpisodeContext, type HyperMethod, type OnlineStepCore } from '../core';
import type { LambdaUpdates } from './updates';

/** w_T and the last inner step's L_T and ‖∇_w L_T‖ (for the finite check before Reptile). */
export interface InnerOutcome {
  wT: ParamTree;
  last: { loss: Tensor; gradNorm: Tensor } | null;
}

/** One compiled inner step: w_t, the momentum buffer, the step's hypergradient with what its check reads, and L_T. */
export interface StepTensors {
  w: ParamTree;
  buf: ParamTree | null;
  hypergrad: ParamTree;
  valLoss: Tensor;
  hypergradNorm: Tensor;
  loss: Tensor;
  gradNorm: Tensor;
}

/** One compiled inner optimisation: w_T, the last step's L_T and ‖∇_w L_T‖, and the offline hypergradient if any. */
export interface EpisodeTensors {
  wT: ParamTree;
  loss: Tensor;
  gradNorm: Tensor;
  hyper: { hypergrad: ParamTree; valLoss: Tensor; hypergradNorm: Tensor; jvps: number; hvps: number } | null;
}

export type StepArgs<Batch> = [w: ParamTree, buf: ParamTree | null, batch: Batch, valBatch: Batch, args: unknown];
export type EpisodeArgs<Batch> = [w0: ParamTree, batches: readonly Batch[], valBatch: Batch];

/** What the pure units read besides their arguments: the episode's problem, λ (a closure, updated in place) and SGD. */
export type UnitContext<Batch> = Pick<EpisodeContext<Batch>, 'problem' | 'lambda' | 'optimiser'> & {
  sgd: FunctionalOptimizer<SgdState>;
};

/** w_t = SGD-momentum step from w_{t−1} (buffer passed in; zeros before step 1 equal torch's first-step rule), then the core's hypergradient. */
export function onlineStep<Batch>(o: UnitContext<Batch>, core: OnlineStepCore<Batch>, ...[w, buf, batch, valBatch, args]: StepArgs<Batch>): StepTensors {
  return tidy(() => {
    const lg = trainLossAndGradient(o.problem, w, o.lambda, batch);
    const gradNorm = noGrad(() => normTree(lg.gradient));
    const next = noGrad(() => o.sgd.step(w, lg.gradient, { step: 0, momentum: buf }));
    const h = core.tensors({ problem: o.problem, lambda: o.lambda, valBatch, innerLr: o.optimiser.lr, wPrev: w, w: next.params, batch }, args);
    const hypergradNorm = noGrad(() => normTree(h.hypergrad));
    return {
      w: next.params,
      buf: next.state.momentum,
      hypergrad: h.hypergrad,
      valLoss: h.loss,
      hypergradNorm,
      loss: lg.loss,
      gradNorm,
    };
  });
}

/** The whole inner optimisation w_0 → w_T and, for an offline method, its hypergradient from the trajectory. */
export function wholeEpisode<Batch>(o: UnitContext<Batch>, method: HyperMethod<Batch>, ...[w0, batches, valBatch]: EpisodeArgs<Batch>): EpisodeTensors {
  return tidy(() => {
    const run = runInnerTensors({ problem: o.problem, lambda: () => o.lambda, w0, batches, optimiser: o.optimiser });
    let hyper: EpisodeTensors['hyper'] = null;
    if (method.offline) {
      const r = method.offline.tensors({
        problem: o.problem,
        theta: run.wT,
        initial: w0,
        lambda: o.lambda,
        trainBatch: batches[batches.length - 1],
        trainBatches: batches,
        valBatch,
        innerLr: o.optimiser.lr,
        momentum: o.optimiser.momentum,
      });
      hyper = {
        hypergrad: r.hypergrad,
        valLoss: r.valLoss,
        hypergradNorm: noGrad(() => normTree(r.hypergrad)),
        jvps: r.stats.jvps,
        hvps: r.stats.hvps,
      };
    }
    return { wT: run.wT, loss: run.last.loss, gradNorm: run.last.gradNorm, hyper };
  });
}

/** Per inner step: the core's host work, one (compiled) `onlineStep`, then λ's checked update. */
export async function compiledSteps<Batch>(
  ctx: EpisodeContext<Batch>,
  core: OnlineStepCore<Batch>,
  updates: LambdaUpdates,
  step: (...a: StepArgs<Batch>) => Promise<StepTensors>,
): Promise<InnerOutcome> {
  const T = ctx.trainBatches.length;
  if (T === 0) throw new InvalidArgumentError('EpisodicTrainer: the episode has no training batches (T = 0)');
  let s: InnerOutcome & { buf: ParamTree | null } = {
    wT: ctx.w0,
    buf: ctx.optimiser.momentum !== 0 ? zerosTree(ctx.w0) : null,
    last: null,
  };
  try {
    for (let t = 1; t <= T; t++) {
      const batch = ctx.trainBatches[t - 1];
      s = await carryAsync(
        s,
        async ({ wT: w, buf }) => {
          const { args } = core.prepare ? core.prepare(ctx, t, w, batch) : { args: null };
          const out = await step(w, buf, batch, ctx.valBatch, args);
          const [valLoss, norm] = await readScalars([out.valLoss, out.hypergradNorm]);
          updates.apply(out.hypergrad, norm, valLoss, `at inner step ${t}`, core.stats);
          return { wT: out.w, buf: out.buf, last: t === T ? { loss: out.loss, gradNorm: out.gradNorm } : null };
        },
        ctx.w0,
      );
    }
  } catch (error) {
    core.release?.();
    throw error;
  }
  return s;
}

/** One (compiled) `wholeEpisode`, then λ's checked update with its hypergradient, if the method has one. */
export async function compiledEpisode<Batch>(
  ctx: EpisodeContext<Batch>,
  updates: LambdaUpdates,
  run: (...a: EpisodeArgs<Batch>) => Promise<EpisodeTensors>,
): Promise<InnerOutcome> {
  const out = await run(ctx.w0, ctx.trainBatches, ctx.valBatch);
  if (out.hyper) {
    const [valLoss, norm] = await readScalars([out.hyper.valLoss, out.hyper.hypergradNorm]);
    updates.apply(out.hyper.hypergrad, norm, valLoss, 'at the end', out.hyper);
  }
  return { wT: out.wT, last: { loss: out.loss, gradNorm: out.gradNorm } };
}

/** runInner with the method's `step` after every inner step (each result checked and applied, then freed). */
export async function eagerInner<Batch>(ctx: EpisodeContext<Batch>, method: HyperMethod<Batch>, updates: LambdaUpdates): Promise<InnerOutcome> {
  const run = await runInner({
    problem: ctx.problem,
    lambda: () => ctx.lambda,
    w0: ctx.w0,
    batches: ctx.trainBatches,
    optimiser: ctx.optimiser,
    trackLast: true,
    onStep: method.step ? async (s) => updates.applyResult(await method.step!(ctx, s), `at inner step ${s.t}`) : undefined,
  });
  return { wT: run.wT, last: run.last ?? null };
}
