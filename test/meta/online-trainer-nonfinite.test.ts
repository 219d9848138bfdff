/**
 * @file OnlineTrainer refuses a NaN/Inf hypergradient or training gradient with a named error and leaves λ and θ
 * as they were (no silent NaN parameters).
 */
import { describe, expect, it } from 'vitest';
import { tidy } from '@metagrad/tensor';
import { mulScalar } from '@metagrad/tensor/raw';
import { expectNoLeaks, noGrad } from '@metagrad/autograd';
import { Adam, SGD, disposeTree, mapTree } from '@metagrad/models';
import {
  type ClassificationBatch,
  type HypergradEstimator,
  NonFiniteGradientError,
  NonFiniteHypergradientError,
  OneStepLookahead,
  OnlineTrainer,
  treeToVector,
} from '@metagrad/meta';
import { useDevice } from '../helpers/device';
import { classifier, problem, randomBatch, weightNet } from './mwn-fixture';

const getDevice = useDevice();

/** A look-ahead estimate with every hypergradient entry multiplied by `factor` (NaN or Infinity). */
function poisoned(factor: number): HypergradEstimator<ClassificationBatch> {
  const inner = new OneStepLookahead<ClassificationBatch>();
  return {
    name: `poisoned-${factor}`,
    async estimate(input) {
      const result = await inner.estimate(input);
      const hypergrad = noGrad(() => mapTree(result.hypergrad, (t) => mulScalar(t, factor)));
      disposeTree(result.hypergrad);
      return { ...result, hypergrad };
    },
  };
}

describe('OnlineTrainer with a non-finite hypergradient', () => {
  it('throws NonFiniteHypergradientError naming the estimator and step, leaves λ unchanged, and leaks nothing', async () => {
    const device = getDevice();
    const train = randomBatch(device, 16, 1);
    const val = randomBatch(device, 12, 2);
    for (const factor of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const theta = classifier.init(1, device);
      const lambda = weightNet.init(2, device);
      const thetaOptimizer = new SGD(theta, { lr: 0.1 });
      const lambdaOptimizer = new Adam(lambda, { lr: 1e-2 });
      const trainer = new OnlineTrainer({
        problem,
        estimator: poisoned(factor),
        theta,
        lambda,
        thetaOptimizer,
        lambdaOptimizer,
        order: 'meta-first',
        innerLr: 0.1,
      });
      const lambdaBefore = Array.from(await treeToVector(lambda));
      await expectNoLeaks(async () => {
        await expect(trainer.trainStep(train, val)).rejects.toThrow(NonFiniteHypergradientError);
      }, device);
      await expect(trainer.trainStep(train, val)).rejects.toThrow(new RegExp(`poisoned-${factor}: ‖dL_V/dλ‖ = (NaN|Infinity) at step 0 .*λ was not updated`));
      expect(Array.from(await treeToVector(lambda))).toEqual(lambdaBefore);
      thetaOptimizer.dispose();
      lambdaOptimizer.dispose();
      disposeTree([theta, lambda]);
    }
    disposeTree([train.x, train.y, val.x, val.y]);
  });

  it('a NaN/Inf training loss throws NonFiniteGradientError before the base step, leaving θ unchanged', async () => {
    const device = getDevice();
    const train = randomBatch(device, 16, 1);
    const val = randomBatch(device, 12, 2);
    for (const factor of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const broken: typeof problem = {
        ...problem,
        trainLoss: (w, l, b) => tidy(() => mulScalar(problem.trainLoss(w, l, b), factor)),
      };
      const theta = classifier.init(1, device);
      const lambda = weightNet.init(2, device);
      const thetaOptimizer = new SGD(theta, { lr: 0.1, momentum: 0.9 });
      const lambdaOptimizer = new Adam(lambda, { lr: 1e-2 });
      const trainer = new OnlineTrainer({
        problem: broken,
        estimator: null,
        theta,
        lambda,
        thetaOptimizer,
        lambdaOptimizer,
        order: 'base-first',
        innerLr: 0.1,
      });
      const thetaBefore = Array.from(await treeToVector(theta));
      await expectNoLeaks(async () => {
        await expect(trainer.trainStep(train, val)).rejects.toThrow(NonFiniteGradientError);
      }, device);
      await expect(trainer.trainStep(train, val)).rejects.toThrow(/OnlineTrainer base step 0: training loss (NaN|Infinity), .*θ was not updated/);
      expect(Array.from(await treeToVector(theta))).toEqual(thetaBefore);
      thetaOptimizer.dispose();
      lambdaOptimizer.dispose();
      disposeTree([theta, lambda]);
    }
    disposeTree([train.x, train.y, val.x, val.y]);
  });
});
