/**
 * @file OneStepLookahead (T1–T2): θ' = θ − α∇θL_T(θ, λ) recorded with createGraph, then dL_V(θ', λ)/dλ, so the
 * indirect term −α ∇θ'L_Vᵀ ∂²L_T/∂θ∂λ is exact for one SGD step. Costs a second-order backward and keeps the
 * training forward, its backward and the validation forward on the tape at once.
 */
import { tidy } from '@metagrad/tensor';
import { axpyTree } from '@metagrad/models';
import { emptyStats, type HypergradEstimator, type HypergradInput, type HypergradResult, type HypergradTensors } from './types';
import { checkInnerLr, gradLeaves, gradTree } from './common';
import { readEstimate } from './result';

export class OneStepLookahead<Batch> implements HypergradEstimator<Batch> {
  readonly name = 't1-t2';

  async estimate(input: HypergradInput<Batch>): Promise<HypergradResult> {
    const t0 = performance.now();
    return readEstimate(this.estimateTensors(input), t0);
  }

  estimateTensors(input: HypergradInput<Batch>): HypergradTensors {
    checkInnerLr('OneStepLookahead', input.innerLr);
    const out = tidy(() => {
      const lambda = gradLeaves(input.lambda);
      const theta = gradLeaves(input.theta);
      const trainLoss = input.problem.trainLoss(theta, lambda, input.trainBatch);
      const g = gradTree(trainLoss, theta, true);
      const lookahead = axpyTree(-input.innerLr, g, theta);
      const loss = input.problem.valLoss(lookahead, lambda, input.valBatch);
      return { hypergrad: gradTree(loss, lambda), loss };
    });
    return { hypergrad: out.hypergrad, valLoss: out.loss, stats: { ...emptyStats(), gradients: 2, hvps: 1, forwards: 2 } };
  }
}
