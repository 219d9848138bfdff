/** @file A MetaLearner from its implementation: the readback-free core (or an async body) and the option narrowing. */
import * as raw from '@metagrad/tensor/raw';
import type { ParamTree } from '@metagrad/models';
import type { MetaGradientOut, MetaGradientTensorsOut, MetaLearner, MetaProblem } from './types';

/** One task's meta-gradient as tensors; `intermediates` says whether `adapted` and `innerLosses` are wanted. */
export type TensorCore = <P extends ParamTree, D>(problem: MetaProblem<P, D>, theta: P, task: D, intermediates: boolean) => MetaGradientTensorsOut<P>;
/** One task's meta-gradient, read back (for learners that read values mid-computation). */
export type AsyncCore = <P extends ParamTree, D>(problem: MetaProblem<P, D>, theta: P, task: D, intermediates: boolean) => Promise<MetaGradientOut<P>>;

/**
 * A learner with a readback-free core: `metaGradient` runs it in a `scope`, reads J (and the inner losses) in one
 * readback, and returns the gradient (and φ_T); the rest is freed with the scope.
 */
export function tensorLearner(name: string, core: TensorCore): MetaLearner {
  return {
    name,
    metaGradientTensors: ((problem, theta, task, options) => core(problem, theta, task, options?.intermediates === true)) as MetaLearner['metaGradientTensors'],
    metaGradient: ((problem, theta, task, options) =>
      raw.scope(async () => {
        const { outerLoss, innerLosses, adapted, ...rest } = core(problem, theta, task, options?.intermediates === true);
        // J first, then the inner losses: one readback for both.
        const host = Array.from(await (innerLosses ? raw.concat([raw.reshape(outerLoss, [1]), innerLosses], 0) : outerLoss).toArray());
        return { ...rest, outerLoss: host[0], ...(adapted ? { adapted, innerLosses: host.slice(1) } : {}) };
      })) as MetaLearner['metaGradient'],
  };
}

/** A learner that reads back mid-computation (iMAML, A-MAML): no tensor core. */
export function asyncLearner(name: string, body: AsyncCore): MetaLearner {
  return {
    name,
    metaGradient: ((problem, theta, task, options) => body(problem, theta, task, options?.intermediates === true)) as MetaLearner['metaGradient'],
  };
}
