/**
 * @file OnlineTrainer's computations before their checks and updates, as functions of the batches: the base step's
 * L_T, ∇θL_T and ‖∇θL_T‖, the meta step's hypergradient, L_V and ‖dL_V/dλ‖. Readback-free (what the trainer
 * compiles), except the meta step of an estimator without `estimateTensors`.
 */
import { tensor, tidy, type Device, type Tensor } from '@metagrad/tensor';
import { detach, noGrad } from '@metagrad/autograd';
import { normTree, tree, type ParamTree } from '@metagrad/models';
import { gradLeaves, gradTree } from './common';
import type { OnlineTrainerOptions } from './online-options';

/** What the base step computes before its check and update. */
export interface BaseTensors {
  loss: Tensor;
  grads: ParamTree;
  gradNorm: Tensor;
}

/** What the meta step computes before its check and update. */
export interface MetaTensors {
  hypergrad: ParamTree;
  valLoss: Tensor;
  hypergradNorm: Tensor;
}

/**
 * θ's and λ's leaves, then the batches and step size one meta step reads: the compiled steps' arguments (θ and λ
 * as arguments, not closures, so a plan holds copies of them in its own slots and never the caller's storage).
 */
export type MetaArgs<B> = [theta: Tensor[], lambda: Tensor[], trainBatch: B, valBatch: B, trainBatches: readonly B[] | undefined, innerLr: number | undefined];

/** θ's and λ's leaves and the training batch: the compiled base step's arguments. */
export type BaseArgs<B> = [theta: Tensor[], lambda: Tensor[], trainBatch: B];

/** L_T(θ, λ), ∇θL_T (λ held constant) and its norm, for θ's and λ's leaves. */
export function baseTensors<Θ extends ParamTree, Λ extends ParamTree, B>(
  o: OnlineTrainerOptions<Θ, Λ, B>,
  ...[thetaLeaves, lambdaLeaves, trainBatch]: BaseArgs<B>
): BaseTensors {
  return tidy(() => {
    const theta = gradLeaves(tree.fromLeaves(o.theta, thetaLeaves));
    const loss = o.problem.trainLoss(theta, tree.detach(tree.fromLeaves(o.lambda, lambdaLeaves)), trainBatch);
    const grads = gradTree(loss, theta);
    return { loss: detach(loss), grads, gradNorm: noGrad(() => normTree(grads)) };
  });
}

/** The estimator's readback-free core and the hypergradient's norm. */
export function metaTensors<Θ extends ParamTree, Λ extends ParamTree, B>(
  o: OnlineTrainerOptions<Θ, Λ, B>,
  ...[th, la, trainBatch, valBatch, trainBatches, innerLr]: MetaArgs<B>
): MetaTensors {
  const [theta, lambda] = [tree.fromLeaves(o.theta, th), tree.fromLeaves(o.lambda, la)];
  const r = o.estimator!.estimateTensors!({
    problem: o.problem,
    theta,
    lambda,
    trainBatch,
    valBatch,
    innerLr,
    trainBatches,
  });
  return { hypergrad: r.hypergrad, valLoss: r.valLoss, hypergradNorm: noGrad(() => normTree(r.hypergrad)) };
}

/** An estimator that reads back (Neumann, CG): its async estimate, shaped like the core's result. */
export async function eagerMetaTensors<Θ extends ParamTree, Λ extends ParamTree, B>(
  o: OnlineTrainerOptions<Θ, Λ, B>,
  device: Device,
  ...[, , trainBatch, valBatch, trainBatches, innerLr]: MetaArgs<B>
): Promise<MetaTensors> {
  const r = await o.estimator!.estimate({
    problem: o.problem,
    theta: o.theta,
    lambda: o.lambda,
    trainBatch,
    valBatch,
    innerLr,
    trainBatches,
  });
  // A host number as a one-element tensor (the eager estimators read their loss back already).
  return {
    hypergrad: r.hypergrad,
    valLoss: tensor([r.valLoss], [1], 'f32', device),
    hypergradNorm: noGrad(() => normTree(r.hypergrad)),
  };
}
