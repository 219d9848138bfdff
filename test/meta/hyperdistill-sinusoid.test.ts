/** @file Smoke test of the E5 experiment code on a tiny configuration: every method trains, is diagnosed and meta-tested. */
import { describe, expect, it } from 'vitest';
import { expectNoLeaks } from '@metagrad/autograd';
import { E5_QUICK, measureEpisodeCosts, runHyperdistillSinusoid, type E5Config } from '@metagrad/experiments/node';
import { useDevice } from '../helpers/device';

const getDevice = useDevice();

const tiny: E5Config = {
  ...E5_QUICK,
  episodes: 2,
  steps: 3,
  metaBatch: 2,
  shots: 4,
  hidden: 6,
  testTasks: 4,
  testChunk: 2,
  testQuery: 5,
  diagnoseAt: [2],
  neumann: { iterations: 2, lastSteps: 2 },
};

describe('E5 hyperdistill-sinusoid (tiny)', () => {
  it('runs FO, 1-step, DrMAD, Neumann, HyperDistill and the online RMD references end to end without leaks', async () => {
    const device = getDevice();
    let results: Awaited<ReturnType<typeof runHyperdistillSinusoid>> = [];
    await expectNoLeaks(async () => {
      results = await runHyperdistillSinusoid(tiny, device);
    }, device);
    expect(results.map((r) => r.key)).toEqual(['fo', 'oneStep', 'drmad', 'neumann', 'hyperdistill0.9', 'hyperdistill0.99', 'rmdOnline3', 'rmdOnline']);
    for (const r of results) {
      expect(r.mse.every(Number.isFinite)).toBe(true);
      expect(r.records).toHaveLength(tiny.episodes);
      expect(r.cosines).toHaveLength(1);
    }
    const hd = results.find((r) => r.key === 'hyperdistill0.9')!;
    expect(hd.records[0].fitJvps).toBe(3 * tiny.steps - 1);
    expect(hd.records[1].jvps).toBe(tiny.steps);
    // The exact online reference matches the exact hypergradient at t = T of the diagnostic replay.
    const exact = results.find((r) => r.key === 'rmdOnline')!;
    expect(exact.records[1].jvps).toBe(tiny.steps ** 2);
    expect(exact.cosines[0].cosine).toBeGreaterThan(0.999);
  });

  it('measures the cost per inner optimisation side by side', async () => {
    const device = getDevice();
    let costs: Awaited<ReturnType<typeof measureEpisodeCosts>> = [];
    await expectNoLeaks(async () => {
      costs = await measureEpisodeCosts({ ...tiny, only: ['oneStep', 'hyperdistill0.9'] }, device, 1);
    }, device);
    expect(costs.map((c) => c.key)).toEqual(['oneStep', 'hyperdistill0.9']);
    for (const c of costs) {
      expect(c.ms).toBeGreaterThan(0);
      expect(c.jvps).toBe(tiny.steps);
    }
  });
});
