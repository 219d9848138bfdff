/**
 * @file OnlineTrainer keeps device memory flat step after step: live tensors, bytes in use, pooled and allocated
 * bytes and the readback staging buffers (each step reads back a few scalars, which once leaked a staging buffer
 * each), for a sampling and a gradient-based estimator, in both update orders.
 */
import { describe, expect, it } from 'vitest';
import type { MemoryStats } from '@metagrad/tensor';
import { Adam, SGD, disposeTree } from '@metagrad/models';
import { EvoGrad, type HypergradEstimator, OneStepLookahead, OnlineTrainer, type ClassificationBatch } from '@metagrad/meta';
import { useDevice } from '../helpers/device';
import { classifier, problem, randomBatch, weightNet } from './mwn-fixture';

const getDevice = useDevice();

/** The figures that must not grow (peakBytesInUse is reset every step by the trainer itself). */
function footprint(memory: MemoryStats): Omit<MemoryStats, 'peakBytesInUse'> {
  const { peakBytesInUse: _peak, ...rest } = memory;
  return rest;
}

describe('OnlineTrainer device memory', () => {
  const estimators: [string, () => HypergradEstimator<ClassificationBatch>][] = [
    ['EvoGrad', () => new EvoGrad<ClassificationBatch>({ K: 2, sigma: 1e-3, tau: 0.05, noise: 'rademacher', seed: 3 })],
    ['one-step look-ahead', () => new OneStepLookahead<ClassificationBatch>()],
  ];
  for (const [name, make] of estimators) {
    for (const order of ['meta-first', 'base-first'] as const) {
      it(`${name}, ${order}: memory() including staging bytes is the same after 5 and after 35 steps`, async () => {
        const device = getDevice();
        const train = randomBatch(device, 16, 1);
        const val = randomBatch(device, 12, 2);
        const theta = classifier.init(1, device);
        const lambda = weightNet.init(2, device);
        const thetaOptimizer = new SGD(theta, { lr: 0.1, momentum: 0.9 });
        const lambdaOptimizer = new Adam(lambda, { lr: 1e-2 });
        const trainer = new OnlineTrainer({
          problem,
          estimator: make(),
          theta,
          lambda,
          thetaOptimizer,
          lambdaOptimizer,
          order,
          innerLr: 0.1,
        });
        // Warm-up: optimiser state, pipelines, pooled buffers and cached staging buffers exist before the window.
        for (let i = 0; i < 5; i++) await trainer.trainStep(train, val);
        const before = footprint(device.memory());
        for (let i = 0; i < 30; i++) await trainer.trainStep(train, val);
        const after = footprint(device.memory());
        expect(after).toEqual(before);
        expect(before.bytesStaging, 'the device reports its staging bytes').toBeGreaterThan(0);
        expect(trainer.log.every((entry) => Number.isFinite(entry.trainLoss) && Number.isFinite(entry.valLoss))).toBe(true);
        thetaOptimizer.dispose();
        lambdaOptimizer.dispose();
        disposeTree([theta, lambda, train.x, train.y, val.x, val.y]);
      });
    }
  }
});
