/** @file Each method's final hypergradient against the exact unrolled one (the HyperDistill paper's Figure 3): cosines and norm ratios. */
/*
 * How close each method's hypergradient is to the exact one (the paper's Figure 3): one inner optimisation at
 * fixed λ, every method fed along it, and at t = T each method's hypergradient compared with the exact unrolled one
 * (UnrolledRMD through the same momentum SGD) by cosine similarity, in full and for the second-order part (minus
 * ∂_λ L_V(w_T)), with the norm ratios of both.
 */
import { scope } from '@metagrad/tensor';
import { sgd, type ParamTree } from '@metagrad/models';
import { UnrolledRMD } from '../hypergrad/unrolled';
import { cosine, treeToVector, vectorNorm } from '../hypergrad/diagnostics';
import { runInner, valGradients, type EpisodeContext, type HyperMethod } from '../core';

export interface CosineRow {
  name: string;
  cosine: number;
  /** Cosine of (estimate − direct term) with (exact − direct term). */
  cosineSecondOrder: number;
  /** ‖estimate‖ / ‖exact‖. */
  normRatio: number;
  /** ‖estimate − direct term‖ / ‖exact − direct term‖: the scale of the second-order part (π* for HyperDistill). */
  normRatioSecondOrder: number;
}

const minus = (a: Float64Array, b: Float64Array): Float64Array => a.map((v, i) => v - b[i]);

/** The exact hypergradient of the context's inner optimisation: autograd through the whole differentiable unroll. */
async function exactHypergradient<Batch>(ctx: EpisodeContext<Batch>): Promise<ParamTree> {
  const T = ctx.trainBatches.length;
  const exact = new UnrolledRMD<Batch>({
    steps: T,
    optimizer: sgd({ lr: ctx.optimiser.lr, momentum: ctx.optimiser.momentum }),
  });
  const r = await exact.estimate({
    problem: ctx.problem,
    theta: ctx.w0,
    lambda: ctx.lambda,
    trainBatch: ctx.trainBatches[0],
    trainBatches: ctx.trainBatches,
    valBatch: ctx.valBatch,
    innerLr: ctx.optimiser.lr,
  });
  return r.hypergrad;
}

/**
 * Replays the context's inner optimisation at fixed λ (`ctx.diagnostic` is forced on) and compares every method's
 * final hypergradient with the exact one. Methods that produce nothing at t = T get NaN.
 */
export function compareWithExact<Batch>(ctx: EpisodeContext<Batch>, methods: readonly HyperMethod<Batch>[]): Promise<{ rows: CosineRow[]; exactNorm: number }> {
  const dctx: EpisodeContext<Batch> = { ...ctx, diagnostic: true };
  /** Each method's last hypergradient at t = T, on the host. */
  const finals = new Map<HyperMethod<Batch>, Float64Array>();
  return scope(async () => {
    for (const m of methods) await m.begin?.(dctx);
    const { wT } = await runInner({
      problem: ctx.problem,
      lambda: () => ctx.lambda,
      w0: ctx.w0,
      batches: ctx.trainBatches,
      optimiser: ctx.optimiser,
      onStep: async (s) => {
        for (const m of methods) {
          const r = m.step ? await m.step(dctx, s) : null;
          if (r && s.t === s.T) finals.set(m, await treeToVector(r.hypergrad));
        }
      },
    });
    for (const m of methods) {
      const r = m.end ? await m.end(dctx, wT) : null;
      if (r) finals.set(m, await treeToVector(r.hypergrad));
    }
    const exact = await treeToVector(await exactHypergradient(ctx));
    const fo = await treeToVector(valGradients(ctx.problem, wT, ctx.lambda, ctx.valBatch).direct);
    const exactSO = minus(exact, fo);
    const rows = methods.map((m): CosineRow => {
      const est = finals.get(m);
      if (!est) return { name: m.name, cosine: NaN, cosineSecondOrder: NaN, normRatio: NaN, normRatioSecondOrder: NaN };
      const estSO = minus(est, fo);
      return {
        name: m.name,
        cosine: cosine(est, exact),
        cosineSecondOrder: cosine(estSO, exactSO),
        normRatio: vectorNorm(est) / vectorNorm(exact),
        normRatioSecondOrder: vectorNorm(estSO) / vectorNorm(exactSO),
      };
    });
    return { rows, exactNorm: vectorNorm(exact) };
  });
}
