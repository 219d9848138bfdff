/**
 * @file EpisodicTrainer and HyperDistill refuse NaN/Inf hypergradients and inner optimisations with named errors and
 * leave λ (with Adam's state), φ and HyperDistill's θ as they were, without leaking.
 */
import { describe, expect, it } from 'vitest';
import type { Device } from '@metagrad/tensor';
import { mulScalar } from '@metagrad/tensor/raw';
import { expectNoLeaks, noGrad } from '@metagrad/autograd';
import { disposeTree, mapTree, type ParamTree } from '@metagrad/models';
import {
  DrMAD,
  type EpisodicTrainer,
  HyperDistill,
  NeumannIFT,
  NonFiniteGradientError,
  NonFiniteHypergradientError,
  firstOrderMethod,
  hyperDistillMethod,
  implicitMethod,
  offlineMethod,
  onlineReverseMethod,
  treeToVector,
  type Episode,
  type HyperMethod,
  type RegressionBatch,
} from '@metagrad/meta';
import { useDevice } from '../helpers/device';
import { anilTrainer, sinusoidEpisode } from './anil-fixture';

const getDevice = useDevice();
const T = 3;

/** The episode every test here uses; `poison` (NaN or Infinity) replaces one support target. */
const episode = (device: Device, poison?: number): Episode<RegressionBatch> => sinusoidEpisode(device, 5, T, poison);
const trainer = (device: Device, method: HyperMethod<RegressionBatch>) => anilTrainer(device, method, { hyperLr: 1e-2 });

/**
 * FO whose hypergradient at inner step 1 is multiplied by `factor` once `armed.on`, returned without a checked norm
 * (as a method built on a shared estimator would): the trainer must check it.
 */
function poisonedFO(factor: number, armed: { on: boolean }): HyperMethod<RegressionBatch> {
  const fo = firstOrderMethod<RegressionBatch>();
  return {
    name: `poisoned-${factor}`,
    async step(ctx, s) {
      const r = (await fo.step!(ctx, s))!;
      const hypergrad = noGrad(() => mapTree(r.hypergrad, (t) => mulScalar(t, armed.on && s.t === 1 ? factor : 1)));
      disposeTree(r.hypergrad);
      return { hypergrad, valLoss: r.valLoss, stats: r.stats };
    },
  };
}

/** λ and φ as host numbers. */
async function snapshot(tr: EpisodicTrainer<RegressionBatch>, lambda: ParamTree): Promise<number[][]> {
  return [Array.from(await treeToVector(lambda)), Array.from(await treeToVector(tr.phi))];
}

describe('EpisodicTrainer with non-finite values', () => {
  it('a NaN/Inf hypergradient without a checked norm is a NonFiniteHypergradientError; λ and φ unchanged, the trainer usable afterwards', async () => {
    const device = getDevice();
    const good = episode(device);
    for (const factor of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const armed = { on: false };
      const poisoned = trainer(device, poisonedFO(factor, armed));
      await poisoned.tr.runEpisode(good);
      armed.on = true;
      const before = await snapshot(poisoned.tr, poisoned.lambda);
      await expectNoLeaks(async () => {
        await expect(poisoned.tr.runEpisode(good)).rejects.toThrow(NonFiniteHypergradientError);
      }, device);
      await expect(poisoned.tr.runEpisode(good)).rejects.toThrow(
        new RegExp(`poisoned-${factor}: ‖dL_V/dλ‖ = (NaN|Infinity) at inner step 1 of inner optimisation \\d.*λ was not updated`),
      );
      expect(await snapshot(poisoned.tr, poisoned.lambda)).toEqual(before);
      armed.on = false;
      expect(Number.isFinite((await poisoned.tr.runEpisode(good)).valLoss)).toBe(true);
      poisoned.dispose();
    }
    good.dispose();
  });

  it('a NaN/Inf training target: every method refuses its hypergradient (named by the estimator) before λ or φ moves', async () => {
    const device = getDevice();
    const good = episode(device);
    const methods = (): HyperMethod<RegressionBatch>[] => [
      firstOrderMethod(),
      hyperDistillMethod(new HyperDistill({ gamma: 0, estimationPeriod: 1, theta: 1 }), '1-step'),
      offlineMethod(new DrMAD(), 'DrMAD'),
      onlineReverseMethod({ horizon: 2 }),
      implicitMethod(new NeumannIFT({ iterations: 2 }), 1, 'Neumann'),
    ];
    for (const poison of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const bad = episode(device, poison);
      for (const method of methods()) {
        const { tr, lambda, dispose } = trainer(device, method);
        await tr.runEpisode(good);
        const before = await snapshot(tr, lambda);
        let error: unknown;
        await expectNoLeaks(async () => {
          error = await tr.runEpisode(bad).catch((e: unknown) => e);
        }, device);
        // Neumann's own series check (NeumannDivergenceError) may see the NaN before the hypergradient does.
        expect(['NonFiniteHypergradientError', 'NeumannDivergenceError'], `${method.name}: ${String(error)}`).toContain((error as Error).name);
        if ((error as Error).name === 'NonFiniteHypergradientError') expect(error).toBeInstanceOf(NonFiniteHypergradientError);
        expect(await snapshot(tr, lambda), method.name).toEqual(before);
        // The trainer still works on good data afterwards.
        expect(Number.isFinite((await tr.runEpisode(good)).valLoss)).toBe(true);
        dispose();
      }
      bad.dispose();
    }
    good.dispose();
  });

  it('a NaN/Inf inner optimisation with no hypergradient to catch it is a NonFiniteGradientError before the Reptile step', async () => {
    const device = getDevice();
    const none: HyperMethod<RegressionBatch> = { name: 'none' };
    for (const poison of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const bad = episode(device, poison);
      const { tr, lambda, dispose } = trainer(device, none);
      const before = await snapshot(tr, lambda);
      await expectNoLeaks(async () => {
        await expect(tr.runEpisode(bad)).rejects.toThrow(NonFiniteGradientError);
      }, device);
      await expect(tr.runEpisode(bad)).rejects.toThrow(
        /EpisodicTrainer inner optimisation 2 \(‖w_T‖ = (NaN|Infinity); Reptile step skipped, φ unchanged\), last inner step 3: training loss (NaN|Infinity)/,
      );
      expect(await snapshot(tr, lambda)).toEqual(before);
      dispose();
      bad.dispose();
    }
  });

  it("HyperDistill's LinearEstimation refuses NaN/Inf samples and keeps θ", async () => {
    const device = getDevice();
    for (const poison of [Number.NaN, Number.POSITIVE_INFINITY]) {
      const bad = episode(device, poison);
      const hd = new HyperDistill<RegressionBatch>({ gamma: 0.9, estimationPeriod: 1 });
      const { tr, lambda, dispose } = trainer(device, hyperDistillMethod(hd));
      const before = await snapshot(tr, lambda);
      await expectNoLeaks(async () => {
        await expect(tr.runEpisode(bad)).rejects.toThrow(/linearEstimation: at horizon s = \d of 3: ‖v_s‖² = .*θ was not refitted/);
      }, device);
      expect(hd.theta).toBe(1);
      expect(await snapshot(tr, lambda)).toEqual(before);
      dispose();
      bad.dispose();
    }
  });
});
