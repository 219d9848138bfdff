/** @file FirstOrder: the direct term ∂L_V/∂λ at the current θ only (the indirect term through θ is dropped). */
import { tidy } from '@metagrad/tensor';
import { tree, type ParamTree } from '@metagrad/models';
import { emptyStats, type HypergradEstimator, type HypergradInput, type HypergradResult, type HypergradTensors } from './types';
import { gradLeaves, gradTree } from './common';
import { readEstimate } from './result';

/**
 * Zero wherever λ only acts through training (Meta-Weight-Net, rotation): the baseline every other estimator must
 * beat. Reads only θ, λ and the validation batch (no `trainBatch`, no `innerLr`).
 */
export class FirstOrder<B = unknown> implements HypergradEstimator<B> {
  readonly name = 'first-order';

  async estimate<Θ extends ParamTree, Λ extends ParamTree>(input: HypergradInput<Θ, Λ, B>): Promise<HypergradResult<Λ>> {
    const t0 = performance.now();
    return readEstimate(() => this.estimateTensors(input), t0);
  }

  estimateTensors<Θ extends ParamTree, Λ extends ParamTree>(input: HypergradInput<Θ, Λ, B>): HypergradTensors<Λ> {
    return tidy(() => {
      const lambda = gradLeaves(input.lambda);
      const valLoss = input.problem.valLoss(tree.detach(input.theta), lambda, input.valBatch);
      return { hypergrad: gradTree(valLoss, lambda), valLoss, stats: { ...emptyStats(), gradients: 1, forwards: 1 } };
    });
  }
}
