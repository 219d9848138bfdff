/**
 * @file Compiled estimator and learner cores equal their eager runs: a T1–T2 training step (and 1000 replays of it
 * leave memory where it started), EvoGrad with given noise and with its own Generator, 5-step second-order MAML.
 */
import { describe, expect, it } from 'vitest';
import * as raw from '@metagrad/tensor';
import type { Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { compile } from '@metagrad/autograd';
import { Adam, SGD, detachTree, disposeTree, fromLeaves, leaves, type ParamTree } from '@metagrad/models';
import { EvoGrad, FOMAML, MAML, OneStepLookahead, type ClassificationBatch, type HypergradInput } from '@metagrad/meta';
import { useDevice } from '../helpers/device';
import { classifier, problem, randomBatch, weightNet } from './mwn-fixture';
import { regressionFixture } from './compile-fixture';

const getDevice = useDevice();

async function flat(tree: ParamTree | Tensor): Promise<number[]> {
  const out: number[] = [];
  for (const t of leaves(tree as ParamTree)) out.push(...(await t.toArray()));
  return out;
}

function expectClose(a: number[], b: number[], rel = 1e-6): void {
  expect(a.length).toBe(b.length);
  a.forEach((v, i) => expect(Math.abs(v - b[i]), `entry ${i}: ${v} vs ${b[i]}`).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(b[i]))));
}

describe('compiled estimator cores', () => {
  it('a T1–T2 training step (estimate, Adam on λ, SGD on θ) replays as eager; 1000 replays leave memory() where it started', async () => {
    const device = getDevice();
    const runs = [0, 1].map(() => {
      const theta = classifier.init(1, device);
      const lambda = weightNet.init(2, device);
      return {
        theta,
        lambda,
        thetaOpt: new SGD(theta, { lr: 0.1, momentum: 0.9 }),
        lambdaOpt: new Adam(lambda, { lr: 1e-2 }),
      };
    });
    const estimator = new OneStepLookahead<ClassificationBatch>();
    const stepOf = (r: (typeof runs)[number]) => (train: ClassificationBatch, val: ClassificationBatch) => {
      const out = estimator.estimateTensors({
        problem,
        theta: r.theta,
        lambda: r.lambda,
        trainBatch: train,
        valBatch: val,
        innerLr: 0.1,
      });
      r.lambdaOpt.step(out.hypergrad);
      const th = leaves(r.theta).map((t) => ag.requiresGrad(ag.detach(t)));
      const loss = problem.trainLoss(fromLeaves(r.theta, th), detachTree(r.lambda), train);
      r.thetaOpt.step(fromLeaves(r.theta, ag.grad(loss, th)));
      return out.valLoss;
    };
    const eager = stepOf(runs[0]);
    const compiled = compile(stepOf(runs[1]));
    const batches = [1, 2, 3, 4].map((s) => ({
      train: randomBatch(device, 16, s),
      val: randomBatch(device, 12, s + 10),
    }));
    for (let i = 0; i < 8; i++) {
      const b = batches[i % batches.length];
      const le = raw.tidy(() => eager(b.train, b.val));
      const lc = await compiled(b.train, b.val);
      expectClose(await flat(lc), await flat(le), 1e-5);
      expectClose(await flat(runs[1].lambda), await flat(runs[0].lambda), 1e-5);
      raw.dispose([le, lc]);
    }
    await device.sync();
    const before = device.memory();
    for (let i = 0; i < 1000; i++) {
      const b = batches[i % batches.length];
      (await compiled(b.train, b.val)).dispose();
    }
    await device.sync();
    const after = device.memory();
    expect(after.liveTensors).toBe(before.liveTensors);
    expect(after.bytesInUse).toBe(before.bytesInUse);
    expect(after.bytesAllocated).toBe(before.bytesAllocated);
    expect(compiled.stats().replays).toBeGreaterThanOrEqual(1000);
    compiled.dispose();
    for (const r of runs) {
      r.thetaOpt.dispose();
      r.lambdaOpt.dispose();
      disposeTree([r.theta, r.lambda]);
    }
    disposeTree(batches.flatMap((b) => [b.train.x, b.train.y, b.val.x, b.val.y]));
  });

  it('EvoGrad: compiled with given noise equals eager; with its own Generator every replay draws fresh, eager-identical noise', async () => {
    const device = getDevice();
    const theta = classifier.init(1, device);
    const lambda = weightNet.init(2, device);
    const train = randomBatch(device, 16, 1);
    const val = randomBatch(device, 12, 2);
    const input: HypergradInput<ParamTree, ParamTree, ClassificationBatch> = {
      problem,
      theta,
      lambda,
      trainBatch: train,
      valBatch: val,
      innerLr: 0.1,
    };
    const options = { K: 4, sigma: 1e-2, tau: 0.05, noise: 'gaussian' as const, seed: 5 };
    const fixed = new EvoGrad<ClassificationBatch>(options);
    const noise = fixed.sampleNoise(theta);
    const withNoise = compile((n: ParamTree) => fixed.estimateTensorsWithNoise(input, n));
    const eagerFixed = raw.tidy(() => fixed.estimateTensorsWithNoise(input, noise));
    for (let i = 0; i < 5; i++) {
      const got = await withNoise(noise);
      expectClose(await flat(got.hypergrad), await flat(eagerFixed.hypergrad));
      raw.dispose(got);
    }
    const ea = new EvoGrad<ClassificationBatch>(options);
    const co = new EvoGrad<ClassificationBatch>(options);
    const compiled = compile(() => co.estimateTensors(input));
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const e = raw.tidy(() => ea.estimateTensors(input));
      const c = await compiled();
      const ev = await flat(e.hypergrad);
      expectClose(await flat(c.hypergrad), ev, 1e-5);
      seen.add(ev.map((v) => v.toPrecision(6)).join());
      raw.dispose([e, c]);
    }
    expect(seen.size).toBe(6);
    expect(compiled.stats().replays).toBe(3);
    raw.dispose([eagerFixed, noise]);
    withNoise.dispose();
    compiled.dispose();
    disposeTree([theta, lambda, train.x, train.y, val.x, val.y]);
  });

  it('5-step second-order MAML and FOMAML meta-gradients: compiled equals eager on new tasks', async () => {
    const device = getDevice();
    const { problem: reg, theta, tasks, dispose } = regressionFixture(device);
    for (const learner of [MAML({ steps: 5, innerLr: 0.05 }), FOMAML({ steps: 5, innerLr: 0.05 })]) {
      const compiled = compile((th: typeof theta, task: (typeof tasks)[number]) => learner.metaGradientTensors!(reg, th, task));
      for (let i = 0; i < 6; i++) {
        const task = tasks[i % tasks.length];
        const e = raw.tidy(() => learner.metaGradientTensors!(reg, theta, task));
        const c = await compiled(theta, task);
        expectClose(await flat(c.gradient), await flat(e.gradient), 1e-5);
        expectClose(await flat(c.outerLoss), await flat(e.outerLoss), 1e-5);
        raw.dispose([e.gradient, e.outerLoss, c.gradient, c.outerLoss]);
      }
      expect(compiled.stats().replays).toBe(3);
      compiled.dispose();
    }
    dispose();
  });
});
