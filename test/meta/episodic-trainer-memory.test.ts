/**
 * @file EpisodicTrainer keeps device memory flat over 500 inner steps of every episodic method, compiled and eager,
 * with no dispose in the loop: live tensors, bytes in use, pooled, allocated, staging and compiled bytes are the same
 * after the warm-up episodes and after 500 more inner steps (the trainer's scopes free every step's tensors), and
 * live tensors and bytes in use return to where they were once the trainer and the episode's data are disposed.
 */
import { describe, expect, it } from 'vitest';
import type { MemoryStats } from '@metagrad/tensor';
import {
  ConjugateGradientIFT,
  DrMAD,
  HyperDistill,
  NeumannIFT,
  firstOrderMethod,
  hyperDistillMethod,
  implicitMethod,
  offlineMethod,
  onlineReverseMethod,
  regressionBatchOps,
  type HyperMethod,
  type RegressionBatch,
} from '@metagrad/meta';
import { expectNoLeaks } from '@metagrad/autograd';
import { useDevice } from '../helpers/device';
import { anilTrainer, sinusoidEpisode } from './anil-fixture';

const getDevice = useDevice();
/** Inner steps per episode, and episodes: 50 × 10 = 500 inner steps per method. */
const T = 10;
const EPISODES = 50;

/** The figures that must not grow (the trainer resets the peak every episode). */
function footprint(memory: MemoryStats): Omit<MemoryStats, 'peakBytesInUse'> {
  const { peakBytesInUse: _peak, ...rest } = memory;
  return rest;
}

/** Each method with its warm-up episodes (HyperDistill's pool settles after two refits once the compiled plan exists). */
const methods: [string, () => HyperMethod<RegressionBatch>, number?][] = [
  ['FO', () => firstOrderMethod()],
  ['1-step', () => hyperDistillMethod(new HyperDistill({ gamma: 0, estimationPeriod: 1, theta: 1 }), '1-step')],
  [
    'HyperDistill (θ refitted every 5 episodes, D* merged)',
    () => hyperDistillMethod(new HyperDistill({ gamma: 0.9, estimationPeriod: 5, batchOps: regressionBatchOps, seed: 1 })),
    11,
  ],
  ['DrMAD', () => offlineMethod(new DrMAD(), 'DrMAD')],
  ['Neumann (last 3 steps)', () => implicitMethod(new NeumannIFT({ iterations: 2 }), 3, 'Neumann')],
  ['CG (last 2 steps)', () => implicitMethod(new ConjugateGradientIFT({ iterations: 2, damping: 0.1 }), 2, 'CG')],
  ['online RMD (K = 2)', () => onlineReverseMethod({ horizon: 2 })],
  ['none', () => ({ name: 'none' })],
];

describe('EpisodicTrainer device memory over 500 inner steps', () => {
  for (const [name, make, warmUp = 3] of methods) {
    it(`${name}: memory() is the same after the warm-up and after ${EPISODES} episodes of ${T} steps`, async () => {
      const device = getDevice();
      // Back to the baseline once the trainer and the data are gone; flat in between without a dispose per step.
      await expectNoLeaks(
        async () => {
          // Distinct D_t per step, so HyperDistill merges its distilled batch D* on every step after the first.
          const steps = Array.from({ length: T }, (_, t) => sinusoidEpisode(device, 10 + t, 1));
          const episode = {
            trainBatches: steps.map((e) => e.trainBatches[0]),
            valBatch: steps[0].valBatch,
            dispose: () => steps.forEach((e) => e.dispose()),
          };
          const { tr, dispose } = anilTrainer(device, make(), { hyperLr: 1e-3, reptileLr: 0.5 });
          // Warm-up: pipelines, compiled plans, pooled buffers and staging buffers exist before the window.
          for (let m = 0; m < warmUp; m++) await tr.runEpisode(episode);
          const before = footprint(device.memory());
          const losses: number[] = [];
          for (let m = 0; m < EPISODES; m++) losses.push((await tr.runEpisode(episode)).valLoss);
          expect(footprint(device.memory())).toEqual(before);
          expect(losses.every(Number.isFinite)).toBe(true);
          dispose();
          episode.dispose();
        },
        device,
        name,
      );
    });
  }
});
