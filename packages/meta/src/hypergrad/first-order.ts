/** @file FirstOrder: the direct term ∂L_V/∂λ at the current θ only (the indirect term through θ is dropped). */
import { tidy } from '@metagrad/tensor';
import { detachTree } from '@metagrad/models';
import { emptyStats, type HypergradEstimator, type HypergradInput, type HypergradResult, type HypergradTensors } from './types';
import { gradLeaves, gradTree } from './common';
import { readEstimate } from './result';

/** Zero wherever λ only acts through training (Meta-Weight-Net, rotation): the baseline every other estimator must beat. */
export class FirstOrder<Batch> implements HypergradEstimator<Batch> {
  readonly name = 'first-order';

  async estimate(input: HypergradInput<Batch>): Promise<HypergradResult> {
    const t0 = performance.now();
    return readEstimate(this.estimateTensors(input), t0);
  }

  estimateTensors(input: HypergradInput<Batch>): HypergradTensors {
    const out = tidy(() => {
      const lambda = gradLeaves(input.lambda);
      const theta = detachTree(input.theta);
      const loss = input.problem.valLoss(theta, lambda, input.valBatch);
      return { hypergrad: gradTree(loss, lambda), loss };
    });
    return { hypergrad: out.hypergrad, valLoss: out.loss, stats: { ...emptyStats(), gradients: 1, forwards: 1 } };
  }
}
