/** @file Optimiser interfaces: the functional (differentiable) form, hyperparameter values and LR schedules. */
import type { Tensor } from '@metagrad/tensor';
import type { ParamTree } from '../params';

/** A learning-rate schedule: the LR to use at step `step` (0 for the first step). */
export type Schedule = (step: number) => number;

/**
 * A hyperparameter of a functional optimiser: a number, a schedule (evaluated at the state's step count), or a
 * single-element tensor, through which hypergradients flow (e.g. a learned LR or weight decay).
 */
export type Hyper = number | Schedule | Tensor;

/**
 * An optimiser as a pure function of (params, grads, state), built from differentiable ops so that it can run
 * inside a createGraph unroll. `step` never disposes its inputs: the caller disposes the old params/state
 * (`disposeState`) when it no longer needs them; the graph of a differentiable unroll keeps what it saved.
 */
export interface FunctionalOptimizer<S> {
  init(params: ParamTree): S;
  step<T extends ParamTree>(params: T, grads: ParamTree, state: S): { params: T; state: S };
  disposeState(state: S): void;
}
