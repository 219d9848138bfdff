/**
 * @file UnrolledRMD: reverse-mode differentiation through T inner optimiser steps θ_{t+1} = step(θ_t, ∇θL_T(θ_t, λ)),
 * then dL_V(θ_T, λ)/dλ. `truncate = steps` is the exact hypergradient of the T-step unroll (the reference the
 * cosine diagnostic compares against); a smaller `truncate` differentiates only through the last `truncate` steps
 * (Shaban et al.'s truncated back-propagation), the earlier ones run without a graph.
 * Memory grows linearly with the steps kept on the tape.
 */
import { InvalidArgumentError, tidy } from '@metagrad/tensor';
import { detach, noGrad, requiresGrad } from '@metagrad/autograd';
import { sgd, tree, type FunctionalOptimizer, type ParamTree } from '@metagrad/models';
import {
  emptyStats,
  type HypergradEstimator,
  type HypergradInput,
  type HypergradResult,
  type HypergradTensors,
  type UnrolledIntermediates,
  type HypergradWith,
} from './types';
import { checkInnerLr, checkPositiveInt, gradLeaves, gradTree } from './common';
import { readEstimate } from './result';
import { carry } from '../core/loop';

export interface UnrolledRMDOptions {
  /** Inner steps T ≥ 1; batch t is input.trainBatches[t] (cycled), or input.trainBatch when none are given. */
  steps: number;
  /** How many of the last steps to differentiate through, 1…steps (default steps: exact). */
  truncate?: number;
  /** Differentiable inner optimiser, e.g. `sgd({ lr, momentum })` or `adam({ lr })` (default: plain SGD at input.innerLr). */
  optimizer?: FunctionalOptimizer<any>; // any state type: the estimator only threads it through
}

export type UnrolledTensors<Θ extends ParamTree, Λ extends ParamTree> = HypergradWith<HypergradTensors<Λ>, UnrolledIntermediates<Θ>>;
export type UnrolledResult<Θ extends ParamTree, Λ extends ParamTree> = HypergradWith<HypergradResult<Λ>, UnrolledIntermediates<Θ>>;

export class UnrolledRMD<B = unknown> implements HypergradEstimator<B> {
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

  async estimate<Θ extends ParamTree, Λ extends ParamTree>(input: HypergradInput<Θ, Λ, B>): Promise<UnrolledResult<Θ, Λ>> {
    const t0 = performance.now();
    return readEstimate(() => this.estimateTensors(input), t0);
  }

  /** With `input.intermediates` the result carries the trajectory θ_1 … θ_T (T parameter copies: opt-in). */
  estimateTensors<Θ extends ParamTree, Λ extends ParamTree>(input: HypergradInput<Θ, Λ, B>): UnrolledTensors<Θ, Λ> {
    const { problem } = input;
    if (!this.options.optimizer) checkInnerLr('UnrolledRMD', input.innerLr);
    const optimizer = this.options.optimizer ?? sgd({ lr: input.innerLr! });
    const batches = input.trainBatches?.length ? input.trainBatches : input.trainBatch !== undefined ? [input.trainBatch] : [];
    if (batches.length === 0) throw new InvalidArgumentError('UnrolledRMD: the input needs trainBatches or trainBatch');
    const T = this.steps;
    const firstRecorded = T - this.truncate;
    return tidy(() => {
      const lambda = gradLeaves(input.lambda);
      const constLambda = tree.detach(input.lambda);
      const trajectory: Θ[] = [];
      let theta = tree.detach(input.theta);
      let state = optimizer.init(theta);
      for (let t = 0; t < T; t++) {
        const batch = batches[t % batches.length];
        if (t < firstRecorded) {
          // Outside the truncation window: an ordinary first-order step with λ held constant, a carry of (θ, state)
          // so memory does not grow with the untracked steps (a trajectory entry is a detached view of its own).
          ({ params: theta, state } = carry({ params: theta, state }, (s) => {
            const leaf = gradLeaves(s.params);
            const g = gradTree(problem.trainLoss(leaf, constLambda, batch), leaf);
            return noGrad(() => optimizer.step(s.params, g, s.state));
          }));
        } else {
          // θ_t must require grad to be differentiated; from the second recorded step on it usually already does
          // (through λ); leaves that do not (λ never reached them) become fresh leaves.
          theta = tree.map(theta, (p) => (p.requiresGrad ? p : requiresGrad(detach(p))));
          const g = gradTree(problem.trainLoss(theta, lambda, batch), theta, true);
          ({ params: theta, state } = optimizer.step(theta, g, state));
        }
        if (input.intermediates) trajectory.push(tree.detach(theta));
      }
      const valLoss = problem.valLoss(theta, lambda, input.valBatch);
      const stats = { ...emptyStats(), gradients: T + 1, hvps: this.truncate, forwards: T + 1 };
      const out: UnrolledTensors<Θ, Λ> = { hypergrad: gradTree(valLoss, lambda), valLoss, stats };
      if (input.intermediates) out.trajectory = trajectory;
      return out;
    });
  }
}
