/** @file The functional model interface: parameters are explicit trees, so fast weights are just another tree. */
import type { Device, Tensor } from '@metagrad/tensor';
import type { ParamTree } from '../params';

/** What `apply` may be told besides the parameters and the input. */
export interface ApplyContext<S = undefined> {
  /** Training mode (batch-norm batch statistics, dropout, feature-wise noise); default false. */
  training?: boolean;
  /** Non-differentiable state (batch-norm running statistics), updated in place in training mode. */
  state?: S;
  /** Seed of the stochastic layers (dropout, feature-wise transforms); required when one is active. */
  seed?: number;
}

/**
 * A model as a pair of pure functions. `init` makes fresh parameter leaves (plain tensors that do not require
 * grad: mark them with `requiresGradTree` or `mapTree(p, requiresGrad)`); `apply` uses only differentiable ops
 * of @metagrad/autograd, so gradients of any order flow to the parameters and to `x`.
 */
export interface Model<P extends ParamTree, S = undefined> {
  init(seed: number, device?: Device): P;
  apply(params: P, x: Tensor, ctx?: ApplyContext<S>): Tensor;
  /** Fresh non-differentiable state (running statistics); present on models that keep some. */
  initState?(device?: Device): S;
}

/** A model with non-differentiable state (batch-norm running statistics): `initState` is always there. */
export type StatefulModel<P extends ParamTree, S> = Model<P, S> & { initState(device?: Device): S };
