/**
 * @file No leaks without a single hand-written dispose in the caller: 500 OnlineTrainer steps of each online
 * estimator and 100 MetaTrainer meta-steps of each learner on tiny problems, the whole run inside one `scope`.
 * Live tensors and bytes in use come back to where they were, and from the warm-up on the footprint stays flat
 * (live tensors, bytes in use, compiled bytes, staging buffers; for the online trainer the pool's bytes too).
 */
import { describe, expect, it } from 'vitest';
import { type Device, type MemoryStats, type Tensor, scope, tensor, tidy } from '@metagrad/tensor';
import { add, exp, matmul, mean, mul, square, sub, sum, tanh } from '@metagrad/autograd';
import { SGD, sgd } from '@metagrad/models';
import {
  AdjointMAML,
  ConjugateGradientIFT,
  EvoGrad,
  FOMAML,
  FirstOrder,
  MAML,
  MetaTrainer,
  NeumannIFT,
  OneStepLookahead,
  OnlineTrainer,
  Reptile,
  UnrolledRMD,
  iMAML,
  mseRegressionProblem,
  type BilevelProblem,
  type HypergradEstimator,
  type MetaLearner,
  type SupportQueryTask,
} from '@metagrad/meta';
import { useDevice } from '../helpers/device';

const getDevice = useDevice();

/** What must come back after the run (the scope frees θ, λ, the batches and the optimisers' buffers). */
const live = (d: Device): Pick<MemoryStats, 'liveTensors' | 'bytesInUse'> => ({
  liveTensors: d.memory().liveTensors,
  bytesInUse: d.memory().bytesInUse,
});
/** What must not grow from step to step (the peak is reset by the trainers). */
function footprint(d: Device): Partial<MemoryStats> {
  const { peakBytesInUse: _peak, ...rest } = d.memory();
  return rest;
}
/**
 * The same without the pool's cache (bytesPooled, bytesAllocated): dopri5's adaptive steps can reach a new working-set
 * high-water mark late (one more 1 KiB buffer after step 10 was seen), which the pool then keeps for reuse.
 */
function tensorFootprint(d: Device): Partial<MemoryStats> {
  const { peakBytesInUse: _peak, bytesPooled: _pooled, bytesAllocated: _allocated, ...rest } = d.memory();
  return rest;
}

// Ridge regression with a learned L2 strength: θ = { w [3, 1] }, λ = log c [1]; L_T = mean((xw − y)²) + c‖w‖², L_V = mean((xw − y)²).
type Theta = { w: Tensor };
type Batch = { x: Tensor; y: Tensor };
const mse = (theta: Theta, b: Batch): Tensor => mean(square(sub(matmul(b.x, theta.w), b.y)));
const ridge: BilevelProblem<Theta, Tensor, Batch> = {
  trainLoss: (theta, lambda, b) => tidy(() => add(mse(theta, b), sum(mul(exp(lambda), sum(square(theta.w)))))),
  valLoss: (theta, _lambda, b) => tidy(() => mse(theta, b)),
};

function batch(device: Device, n: number, seed: number): Batch {
  const x = Float32Array.from({ length: n * 3 }, (_, i) => Math.sin(seed * 7.1 + i * 1.3));
  const y = Float32Array.from({ length: n }, (_, i) => Math.cos(seed * 3.7 + i * 0.9));
  return { x: tensor(x, [n, 3], 'f32', device), y: tensor(y, [n, 1], 'f32', device) };
}

const estimators: [string, () => HypergradEstimator<Batch>][] = [
  ['FirstOrder', () => new FirstOrder<Batch>()],
  ['T1–T2', () => new OneStepLookahead<Batch>()],
  ['EvoGrad', () => new EvoGrad<Batch>({ K: 2, sigma: 1e-2, tau: 0.1, seed: 1 })],
  ['UnrolledRMD', () => new UnrolledRMD<Batch>({ steps: 2 })],
  ['Neumann', () => new NeumannIFT<Batch>({ iterations: 2 })],
  ['CG', () => new ConjugateGradientIFT<Batch>({ iterations: 2 })],
];

describe('500 OnlineTrainer steps of each estimator, no dispose in the caller', () => {
  for (const [name, make] of estimators) {
    it(name, async () => {
      const device = getDevice();
      const before = live(device);
      let flat: [Partial<MemoryStats>, Partial<MemoryStats>] | undefined;
      await scope(async () => {
        const train = batch(device, 8, 1);
        const val = batch(device, 6, 2);
        const theta: Theta = { w: tensor([0.3, -0.2, 0.1], [3, 1], 'f32', device) };
        const lambda = tensor([-2], [1], 'f32', device);
        const trainer = new OnlineTrainer({
          problem: ridge,
          estimator: make(),
          theta,
          lambda,
          order: 'meta-first',
          innerLr: 0.05,
          thetaOptimizer: new SGD(theta, { lr: 0.05, momentum: 0.9 }),
          lambdaOptimizer: new SGD(lambda, { lr: 0.01 }),
        });
        for (let i = 0; i < 20; i++) await trainer.trainStep(train, val, [train, val]);
        const warm = footprint(device);
        for (let i = 20; i < 500; i++) await trainer.trainStep(train, val, [train, val]);
        flat = [warm, footprint(device)];
        expect(trainer.compileFallback).toBeNull();
        expect(trainer.log.every((e) => Number.isFinite(e.trainLoss) && Number.isFinite(e.valLoss))).toBe(true);
      });
      expect(flat![1], `${name}: footprint after 500 steps equals the one after 20`).toEqual(flat![0]);
      expect(live(device), `${name}: live tensors and bytes in use after the scope`).toEqual(before);
    }, 60_000);
  }
});

const learners: [string, () => MetaLearner][] = [
  ['MAML', () => MAML({ steps: 2, innerLr: 0.1 })],
  ['FOMAML', () => FOMAML({ steps: 2, innerLr: 0.1 })],
  ['Reptile', () => Reptile({ steps: 2, innerLr: 0.1 })],
  ['iMAML', () => iMAML({ lambda: 2, cgSteps: 2, steps: 2, innerLr: 0.1 })],
  ['A-MAML', () => AdjointMAML({ T: 0.1, h: 0.05, rtol: 1e-3, atol: 1e-4 })],
];
// ŷ = tanh(x w): a small nonlinear regression, so every learner has curvature to work with.
const regression = mseRegressionProblem<Theta>((p, x) => tanh(matmul(x, p.w)));

describe('100 MetaTrainer meta-steps of each learner, no dispose in the caller', () => {
  for (const [name, make] of learners) {
    it(name, async () => {
      const device = getDevice();
      const before = live(device);
      let flat: [Partial<MemoryStats>, Partial<MemoryStats>] | undefined;
      await scope(async () => {
        const task: SupportQueryTask = {
          support: {
            x: tensor([0.3, -0.8, 0.5, 0.9, 0.1, -0.4, 0.2, 0.6, -0.3], [3, 3], 'f32', device),
            y: tensor([0.5, -0.2, 0.3], [3, 1], 'f32', device),
          },
          query: {
            x: tensor([0.6, 0.2, -0.5, -0.7, 0.4, 0.1], [2, 3], 'f32', device),
            y: tensor([0.1, 0.4], [2, 1], 'f32', device),
          },
        };
        const trainer = new MetaTrainer(make(), regression, { w: tensor([0.2, -0.1, 0.3], [3, 1], 'f32', device) }, sgd({ lr: 0.05 }));
        const first = (await trainer.step([task, task])).outerLoss;
        for (let i = 1; i < 10; i++) await trainer.step([task, task]);
        const warm = tensorFootprint(device);
        let last = NaN;
        for (let i = 10; i < 100; i++) last = (await trainer.step([task, task])).outerLoss;
        flat = [warm, tensorFootprint(device)];
        expect(last).toBeLessThan(first);
      });
      expect(flat![1], `${name}: footprint after 100 meta-steps equals the one after 10`).toEqual(flat![0]);
      expect(live(device), `${name}: live tensors and bytes in use after the scope`).toEqual(before);
    }, 60_000);
  }
});
