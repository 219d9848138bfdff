/**
 * @file Options that mean what they say: an estimator asks only for the inputs its maths reads (FirstOrder: no
 * trainBatch, no innerLr; EvoGrad: no innerLr, no σ or noise kind when the noise is given; UnrolledRMD:
 * trainBatches alone), refuses a missing one it needs by name, and metaWeightNetProblem's detachWeightInput
 * (default true, the authors' `cost_v.data`) and normalizeWeights (default false; Σ v_i ℓ_i / Σ v_j as the
 * authors' code) do what they say.
 */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, tidy, type Tensor } from '@metagrad/tensor';
import { concat, crossEntropy, grad, reshape } from '@metagrad/autograd';
import { Adam, SGD, tree, type MetaWeightNetParams, type MlpParams } from '@metagrad/models';
import { EvoGrad, FirstOrder, OneStepLookahead, OnlineTrainer, UnrolledRMD, batchedMlp, metaWeightNetProblem, treeToVector } from '@metagrad/meta';
import { useDevice } from '../helpers/device';
import { SIZES, classifier, problem, randomBatch, weightNet } from './mwn-fixture';

const getDevice = useDevice();

function setup() {
  const device = getDevice();
  const theta = classifier.init(1, device);
  const lambda = weightNet.init(2, device);
  const train = randomBatch(device, 16, 1);
  const val = randomBatch(device, 12, 2);
  return { device, theta, lambda, train, val, dispose: () => tree.dispose([theta, lambda, { ...train }, { ...val }]) };
}

const vec = async (t: Parameters<typeof treeToVector>[0]) => Array.from(await treeToVector(t));

describe('required inputs are those the maths reads', () => {
  it('FirstOrder needs neither trainBatch nor innerLr; T1–T2 names the one it misses', async () => {
    const { theta, lambda, train, val, dispose } = setup();
    const fo = await new FirstOrder().estimate({ problem, theta, lambda, valBatch: val });
    expect(Number.isFinite(fo.valLoss)).toBe(true);
    const t1t2 = new OneStepLookahead();
    await expect(t1t2.estimate({ problem, theta, lambda, trainBatch: train, valBatch: val })).rejects.toThrow(/innerLr/);
    expect(() => t1t2.estimateTensors({ problem, theta, lambda, valBatch: val, innerLr: 0.1 })).toThrow(InvalidArgumentError);
    expect(() => t1t2.estimateTensors({ problem, theta, lambda, valBatch: val, innerLr: 0.1 })).toThrow(/trainBatch/);
    tree.dispose(fo.hypergrad);
    dispose();
  });

  it('EvoGrad: no innerLr; with given noise no sigma or noise kind; drawing noise without sigma is refused by name', async () => {
    const { theta, lambda, train, val, dispose } = setup();
    const full = new EvoGrad({ K: 2, sigma: 1e-2, tau: 0.1, noise: 'rademacher', seed: 4 });
    expect(new EvoGrad({ K: 2, tau: 0.1 }).options.noise).toBe('rademacher');
    const noise = full.sampleNoise(theta);
    const input = { problem, theta, lambda, trainBatch: train, valBatch: val };
    const a = await full.estimateWithNoise(input, noise);
    const b = await new EvoGrad({ K: 2, tau: 0.1 }).estimateWithNoise(input, noise);
    expect(await vec(b.hypergrad)).toEqual(await vec(a.hypergrad));
    const bare = new EvoGrad({ K: 2, tau: 0.1 });
    await expect(bare.estimate(input)).rejects.toThrow(/sigma/);
    expect(() => bare.sampleNoise(theta)).toThrow(InvalidArgumentError);
    tree.dispose([a.hypergrad, b.hypergrad, noise]);
    dispose();
  });

  it('UnrolledRMD: trainBatches alone is enough; neither batch nor batches is refused', async () => {
    const { theta, lambda, train, val, dispose } = setup();
    const est = new UnrolledRMD({ steps: 2 });
    const a = await est.estimate({ problem, theta, lambda, trainBatches: [train], valBatch: val, innerLr: 0.1 });
    const b = await est.estimate({ problem, theta, lambda, trainBatch: train, valBatch: val, innerLr: 0.1 });
    expect(await vec(a.hypergrad)).toEqual(await vec(b.hypergrad));
    expect(() => est.estimateTensors({ problem, theta, lambda, valBatch: val, innerLr: 0.1 })).toThrow(/trainBatches or trainBatch/);
    tree.dispose([a.hypergrad, b.hypergrad]);
    dispose();
  });

  it('OnlineTrainer runs FirstOrder and EvoGrad without innerLr (compiled and eager)', async () => {
    for (const compile of [true, false]) {
      for (const estimator of [new FirstOrder(), new EvoGrad({ K: 2, sigma: 1e-3, tau: 0.05 })]) {
        const { theta, lambda, train, val, dispose } = setup();
        const thetaOptimizer = new SGD(theta, { lr: 0.1 });
        const lambdaOptimizer = new Adam(lambda, { lr: 1e-2 });
        const trainer = new OnlineTrainer({
          problem,
          estimator,
          theta,
          lambda,
          thetaOptimizer,
          lambdaOptimizer,
          order: 'meta-first',
          compile,
        });
        for (let i = 0; i < 2; i++) {
          const log = await trainer.trainStep(train, val);
          expect(Number.isFinite(log.hypergradNorm)).toBe(true);
        }
        expect(trainer.compileFallback).toBeNull();
        trainer.dispose();
        thetaOptimizer.dispose();
        lambdaOptimizer.dispose();
        dispose();
      }
    }
  });
});

describe('metaWeightNetProblem options', () => {
  const make = (o: { detachWeightInput?: boolean; normalizeWeights?: boolean }) =>
    metaWeightNetProblem({
      classifier: (theta: MlpParams, x) => classifier.apply(theta, x),
      batchedClassifier: batchedMlp({ sizes: SIZES, activation: 'relu' }),
      weightNet: (lambda: MetaWeightNetParams, losses) => weightNet.apply(lambda, losses),
      ...o,
    });

  /** ∇θL_T at (θ, λ) as a flat vector. */
  async function thetaGrad(p: ReturnType<typeof make>, theta: MlpParams, lambda: MetaWeightNetParams, batch: ReturnType<typeof randomBatch>) {
    const g = tidy(() => {
      const leaf = tree.requiresGrad(theta);
      return grad(p.trainLoss(leaf, tree.detach(lambda), batch), tree.leaves(leaf));
    });
    const out = await vec(g);
    tree.dispose(g);
    return out;
  }

  it('detachWeightInput: default true equals the previous problem; false keeps dv/dℓ in ∇θL_T (same L_T value)', async () => {
    const { theta, lambda, train, dispose } = setup();
    const byDefault = make({});
    const detached = make({ detachWeightInput: true });
    const kept = make({ detachWeightInput: false });
    const gDefault = await thetaGrad(byDefault, theta, lambda, train);
    expect(await thetaGrad(problem, theta, lambda, train)).toEqual(gDefault);
    expect(await thetaGrad(detached, theta, lambda, train)).toEqual(gDefault);
    const gKept = await thetaGrad(kept, theta, lambda, train);
    const diff = Math.max(...gKept.map((v, i) => Math.abs(v - gDefault[i])));
    expect(diff).toBeGreaterThan(1e-6);
    const [l1, l2] = [tidy(() => detached.trainLoss(theta, lambda, train)), tidy(() => kept.trainLoss(theta, lambda, train))];
    expect(await l2.item()).toBeCloseTo(await l1.item(), 6);
    tree.dispose([l1, l2]);
    dispose();
  });

  it('normalizeWeights: L_T = Σ v_i ℓ_i / Σ v_j (float64 from the weight net and the per-example losses), batched alike', async () => {
    const { theta, lambda, train, dispose } = setup();
    const normalized = make({ normalizeWeights: true });
    const [perExample, v, loss] = tidy(() => {
      const l = crossEntropy(classifier.apply(theta, train.x), train.y, 'none');
      return [l, weightNet.apply(lambda, reshape(l, [l.size, 1])), normalized.trainLoss(theta, lambda, train)] as const;
    });
    const ls = Array.from(await perExample.toArray());
    const vs = Array.from(await v.toArray());
    const want = ls.reduce((s, l, i) => s + vs[i] * l, 0) / vs.reduce((s, x) => s + x, 0);
    expect(await loss.item()).toBeCloseTo(want, 5);
    const plain = tidy(() => problem.trainLoss(theta, lambda, train));
    expect(await plain.item()).toBeCloseTo(ls.reduce((s, l, i) => s + vs[i] * l, 0) / ls.length, 5);
    // K = 2 stacked copies of θ: each entry equals the single forward's normalised loss.
    const two = tree.map(theta, (t: Tensor) => tidy(() => concat([reshape(t, [1, ...t.shape]), reshape(t, [1, ...t.shape])], 0)));
    const batched = tidy(() => normalized.batchedTrainLoss!(two, lambda, train));
    const got = Array.from(await batched.toArray());
    expect(got[0]).toBeCloseTo(want, 5);
    expect(got[1]).toBeCloseTo(want, 5);
    tree.dispose([perExample, v, loss, plain, two, batched]);
    dispose();
  });
});
