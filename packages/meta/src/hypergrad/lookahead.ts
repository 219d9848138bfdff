/**
 * @file OneStepLookahead (T1–T2): θ′ = θ − α∇θL_T(θ, λ) recorded with createGraph, then dL_V(θ′, λ)/dλ, so the
 * indirect term −α ∇θ′L_Vᵀ ∂²L_T/∂θ∂λ is exact for one SGD step. Costs a second-order backward and keeps the
 * training forward, its backward and the validation forward on the tape at once.
 */
import { tidy } from '@metagrad/tensor';
import { tree, type ParamTree } from '@metagrad/models';
import {
  emptyStats,
  type HypergradEstimator,
  type HypergradInput,
  type HypergradResult,
  type HypergradTensors,
  type LookaheadIntermediates,
  type HypergradWith,
} from './types';
import { checkInnerLr, gradLeaves, gradTree, requireTrainBatch } from './common';
import { readEstimate } from './result';

export type LookaheadTensors<Θ extends ParamTree, Λ extends ParamTree> = HypergradWith<HypergradTensors<Λ>, LookaheadIntermediates<Θ>>;
export type LookaheadResult<Θ extends ParamTree, Λ extends ParamTree> = HypergradWith<HypergradResult<Λ>, LookaheadIntermediates<Θ>>;

export class OneStepLookahead<B = unknown> implements HypergradEstimator<B> {
  readonly name = 't1-t2';

  async estimate<Θ extends ParamTree, Λ extends ParamTree>(input: HypergradInput<Θ, Λ, B>): Promise<LookaheadResult<Θ, Λ>> {
    const t0 = performance.now();
    return readEstimate(() => this.estimateTensors(input), t0);
  }

  estimateTensors<Θ extends ParamTree, Λ extends ParamTree>(input: HypergradInput<Θ, Λ, B>): LookaheadTensors<Θ, Λ> {
    const { problem, innerLr: alpha, valBatch } = input;
    checkInnerLr('OneStepLookahead', alpha);
    const trainBatch = requireTrainBatch('OneStepLookahead', input);
    return tidy(() => {
      const lambda = gradLeaves(input.lambda);
      const theta = gradLeaves(input.theta);
      const g = gradTree(problem.trainLoss(theta, lambda, trainBatch), theta, true); // ∇θL_T(θ, λ), differentiable in λ
      const thetaPrime = tree.axpy(-alpha, g, theta); // θ′ = θ − α∇θL_T
      const valLoss = problem.valLoss(thetaPrime, lambda, valBatch);
      const stats = { ...emptyStats(), gradients: 2, hvps: 1, forwards: 2 };
      const out: LookaheadTensors<Θ, Λ> = { hypergrad: gradTree(valLoss, lambda), valLoss, stats }; // dL_V(θ′, λ)/dλ
      if (input.intermediates) out.thetaPrime = tree.detach(thetaPrime);
      return out;
    });
  }
}
