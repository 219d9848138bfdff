/** @file HyperDistill as an episodic method: fit θ at the scheduled inner optimisations, then one estimate per inner step. */
import type { HyperMethod } from '../core';
import { HyperDistill, type HyperDistillStepArgs } from './hyperdistill';

/** HyperDistill online (γ = 0 with θ = 1 fixed is the one-step look-ahead through the momentum step). */
export function hyperDistillMethod<Batch>(hd: HyperDistill<Batch>, name = hd.name): HyperMethod<Batch> {
  const method: HyperMethod<Batch> = {
    name,
    beginJvps: 0,
    async begin(ctx) {
      method.beginJvps = 0;
      if (!ctx.diagnostic && hd.shouldEstimate(ctx.m)) {
        const fit = await hd.fit({
          problem: ctx.problem,
          lambda: ctx.lambda,
          initial: ctx.w0,
          trainBatches: ctx.trainBatches,
          valBatch: ctx.valBatch,
          optimiser: ctx.optimiser,
        });
        method.beginJvps = fit.jvps;
      }
      hd.reset();
    },
    async step(ctx, s) {
      try {
        return await hd.estimate({
          problem: ctx.problem,
          theta: s.wPrev,
          next: s.w,
          lambda: ctx.lambda,
          trainBatch: s.batch,
          valBatch: ctx.valBatch,
          innerLr: ctx.optimiser.lr,
        });
      } catch (error) {
        // The inner optimisation ends here: forget the running w*, D* now rather than at the next begin.
        hd.reset();
        throw error;
      }
    },
    end: async () => {
      hd.reset();
      return null;
    },
    describe: () => ({ theta: hd.theta }),
    dispose: () => hd.dispose(),
    online: {
      stats: HyperDistill.onlineStats,
      prepare: (_ctx, _t, wPrev, batch) => ({ args: hd.onlineArgs(wPrev, batch) }),
      tensors: (input, args) => hd.onlineTensors(input, input.w, args as HyperDistillStepArgs<Batch>),
      release: () => hd.reset(),
    },
  };
  return method;
}
