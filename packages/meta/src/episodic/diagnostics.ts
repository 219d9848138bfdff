/**
 * @file How close each method's hypergradient is to the exact one (the paper's Figure 3): one inner optimisation at
 * fixed λ, every method fed along it, and at t = T each method's hypergradient compared with the exact unrolled one
 * (UnrolledRMD through the same momentum SGD) by cosine similarity, in full and for the second-order part (minus ∂_λ L_V(w_T)), with the norm ratios of both.
 */
import { disposeTree, leaves, type ParamTree } from '@metagrad/models';
import type { HypergradResult } from '../hypergrad/types';
import { runInner } from './inner';
import { valGradients } from './products';
import { UnrolledRMD } from '../hypergrad/unrolled';
import { cosine, treeToVector, vectorNorm } from '../hypergrad/diagnostics';
import { sgd } from '@metagrad/models';
import type { EpisodeContext, HyperMethod } from './methods';

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

/**
 * Replays the context's inner optimisation at fixed λ (`ctx.diagnostic` is forced on) and compares every method's
 * final hypergradient with the exact one. Methods that produce nothing at t = T get NaN.
 */
export async function compareWithExact<Batch>(ctx: EpisodeContext<Batch>, methods: readonly HyperMethod<Batch>[]): Promise<{ rows: CosineRow[]; exactNorm: number }> {
  const dctx: EpisodeContext<Batch> = { ...ctx, diagnostic: true };
  const finals = new Map<HyperMethod<Batch>, HypergradResult>();
  const keep = (m: HyperMethod<Batch>, r: HypergradResult | null): void => {
    if (!r) return;
    const old = finals.get(m);
    if (old) disposeTree(old.hypergrad);
    finals.set(m, r);
  };
  let wT: ParamTree | null = null;
  try {
    for (const m of methods) await m.begin?.(dctx);
    const run = await runInner({
      problem: ctx.problem,
      lambda: () => ctx.lambda,
      w0: ctx.w0,
      batches: ctx.trainBatches,
      optimiser: ctx.optimiser,
      
      onStep: async (s) => {
        for (const m of methods) {
          if (!m.step) continue;
          const r = await m.step(dctx, s);
          if (s.t === s.T) keep(m, r);
          else if (r) disposeTree(r.hypergrad);
        }
      },
    });
    wT = run.wT;
    for (const m of methods) if (m.end) keep(m, await m.end(dctx, wT));
    // The reference: autograd through the whole differentiable unroll (issue 6's UnrolledRMD) with the same optimiser.
    const T = ctx.trainBatches.length;
    const exactResult = await new UnrolledRMD<Batch>({ steps: T, optimizer: sgd({ lr: ctx.optimiser.lr, momentum: ctx.optimiser.momentum }) }).estimate({
      problem: ctx.problem,
      theta: ctx.w0,
      lambda: ctx.lambda,
      trainBatch: ctx.trainBatches[0],
      trainBatches: ctx.trainBatches,
      valBatch: ctx.valBatch,
      innerLr: ctx.optimiser.lr,
    });
    const exact = await treeToVector(exactResult.hypergrad);
    disposeTree(exactResult.hypergrad);
    const { alpha, direct, loss } = valGradients(ctx.problem, wT, ctx.lambda, ctx.valBatch);
    const fo = await treeToVector(direct);
    disposeTree(alpha);
    disposeTree(direct);
    loss.dispose();
    const exactSO = minus(exact, fo);
    const rows: CosineRow[] = [];
    for (const m of methods) {
      const r = finals.get(m);
      if (!r) {
        rows.push({ name: m.name, cosine: NaN, cosineSecondOrder: NaN, normRatio: NaN, normRatioSecondOrder: NaN });
        continue;
      }
      const est = await treeToVector(r.hypergrad);
      const estSO = minus(est, fo);
      rows.push({
        name: m.name,
        cosine: cosine(est, exact),
        cosineSecondOrder: cosine(estSO, exactSO),
        normRatio: vectorNorm(est) / vectorNorm(exact),
        normRatioSecondOrder: vectorNorm(estSO) / vectorNorm(exactSO),
      });
    }
    return { rows, exactNorm: vectorNorm(exact) };
  } finally {
    for (const r of finals.values()) disposeTree(r.hypergrad);
    if (wT) disposeTree(wT);
  }
}
