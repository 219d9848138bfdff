/**
 * @file UnrolledRMD: reverse-mode differentiation through T inner optimiser steps θ_{t+1} = step(θ_t, ∇θL_T(θ_t, λ)),
 * then dL_V(θ_T, λ)/dλ. `truncate = steps` is the exact hypergradient of the T-step unroll (the reference the
 * cosine diagnostic compares against); a smaller `truncate` differentiates only through the last `truncate` steps
 * (Shaban et al.'s truncated back-propagation), the earlier ones run without a graph.
 * Memory grows linearly with the steps kept on the tape.
 */
import { tidy } from '@metagrad/tensor';
import { detach, noGrad, requiresGrad } from '@metagrad/autograd';
import { detachTree, disposeTree, mapTree, sgd, type FunctionalOptimizer, type ParamTree } from '@metagrad/models';
import { emptyStats, type HypergradEstimator, type HypergradInput, type HypergradResult, type HypergradTensors } from './types';
import { checkInnerLr, checkPositiveInt, gradLeaves, gradTree } from './common';
import { InvalidArgumentError } from '../errors';
import { readEstimate } from './result';

export interface UnrolledRMDOptions {
  /** Inner steps T ≥ 1; batch t is input.trainBatches[t] (cycled), or input.trainBatch when none are given. */
  steps: number;
  /** How many of the last steps to differentiate through, 1…steps (default steps: exact). */
  truncate?: number;
  /** Differentiable inner optimiser, e.g. `sgd({ lr, momentum })` or `adam({ lr })` (default: plain SGD at input.innerLr). */
  optimizer?: FunctionalOptimizer<any>; // any state type: the estimator only threads it through
}

export class UnrolledRMD<Batch> implements HypergradEstimator<Batch> {
  readonly name: string;
  readonly steps: number;
  readonly truncate: number;

  constructor(readonly options: UnrolledRMDOptions) {
    checkPositiveInt('UnrolledRMD', 'steps', options.steps);
    const truncate = options.truncate ?? options.steps;
    if (!Number.isInteger(truncate) || truncate < 1 || truncate > options.steps) {
      throw new InvalidArgumentError(`UnrolledRMD: truncate must be an integer in [1, steps=${options.steps}], got ${truncate}`);
    }
    this.steps = options.steps;
    this.truncate = truncate;
    this.name = truncate === options.steps ? `unrolled-${options.steps}` : `unrolled-${options.steps}-trunc-${truncate}`;
  }

  async estimate(input: HypergradInput<Batch>): Promise<HypergradResult> {
    const t0 = performance.now();
    return readEstimate(this.estimateTensors(input), t0);
  }

  estimateTensors(input: HypergradInput<Batch>): HypergradTensors {
    if (!this.options.optimizer) checkInnerLr('UnrolledRMD', input.innerLr);
    const optimizer = this.options.optimizer ?? sgd({ lr: input.innerLr });
    const batches = input.trainBatches && input.trainBatches.length > 0 ? input.trainBatches : [input.trainBatch];
    const T = this.steps;
    const firstRecorded = T - this.truncate;
    const out = tidy(() => {
      const lambda = gradLeaves(input.lambda);
      const constLambda = detachTree(input.lambda);
      let theta: ParamTree = detachTree(input.theta);
      let state = optimizer.init(theta);
      for (let t = 0; t < T; t++) {
        const batch = batches[t % batches.length];
        if (t < firstRecorded) {
          // Outside the truncation window: an ordinary first-order step with λ held constant, in its own scope
          // and freeing the previous iterate, so memory does not grow with the untracked steps.
          const prevTheta = theta;
          const prevState = state;
          ({ params: theta, state } = tidy(() => {
            const leaf = gradLeaves(prevTheta);
            const g = gradTree(input.problem.trainLoss(leaf, constLambda, batch), leaf);
            return noGrad(() => optimizer.step(prevTheta, g, prevState));
          }));
          disposeTree(prevTheta);
          optimizer.disposeState(prevState);
        } else {
          // θ_t must require grad to be differentiated; from the second recorded step on it usually already does
          // (through λ); leaves that do not (λ never reached them) become fresh leaves.
          theta = mapTree(theta, (p) => (p.requiresGrad ? p : requiresGrad(detach(p))));
          const g = gradTree(input.problem.trainLoss(theta, lambda, batch), theta, true);
          ({ params: theta, state } = optimizer.step(theta, g, state));
        }
      }
      const loss = input.problem.valLoss(theta, lambda, input.valBatch);
      const hypergrad = gradTree(loss, lambda);
      return { hypergrad, loss };
    });
    return { hypergrad: out.hypergrad, valLoss: out.loss, stats: { ...emptyStats(), gradients: T + 1, hvps: this.truncate, forwards: T + 1 } };
  }
}
