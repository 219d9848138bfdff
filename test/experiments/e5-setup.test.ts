/**
 * @file E5's full set-up (issue 18 item 5): the hyper learning rate decays linearly over the M inner optimisations,
 * the full variant runs ≥ 10 seeds on 1000 meta-test tasks with one HyperDistill γ (the tuned one), and the γ
 * tuning run's result appears as a summary row and in results.json (gammaTuning), its row in every E5 summary.
 */
import { describe, expect, it } from 'vitest';
import {
  E5_FULL,
  E5_QUICK,
  E5_TUNED_GAMMA,
  e5Methods,
  hyperLrAt,
  hyperdistillSinusoidSection,
  type E5SeedMethod,
  type E5Tuning,
} from '@metagrad/experiments/node';
import type { SeedRecord } from '@metagrad/experiments';

describe('E5 full set-up', () => {
  it('decays the hyper learning rate linearly from hyperLr to hyperLr/M over the M inner optimisations', () => {
    const cfg = { hyperLr: 1e-3, hyperLrDecay: 'linear' as const, episodes: 30 };
    expect(hyperLrAt(cfg, 1)).toBe(1e-3);
    expect(hyperLrAt(cfg, 16)).toBeCloseTo(5e-4, 12);
    expect(hyperLrAt(cfg, 30)).toBeCloseTo(1e-3 / 30, 12);
    expect(hyperLrAt({ ...cfg, hyperLrDecay: 'constant' }, 30)).toBe(1e-3);
    expect(E5_FULL.hyperLrDecay).toBe('linear');
  });

  it("runs ≥ 10 seeds on 1000 meta-test tasks with the paper's five methods and one tuned γ; quick keeps its size", () => {
    expect(E5_FULL.seeds.length).toBeGreaterThanOrEqual(10);
    expect(E5_FULL.testTasks).toBe(1000);
    expect(E5_FULL.tune?.gammas).toEqual([0.9, 0.99, 0.999, 0.9999]);
    const keys = e5Methods(E5_FULL).map((m) => m.key);
    expect(keys).toEqual(expect.arrayContaining(['fo', 'oneStep', 'drmad', 'neumann', `hyperdistill${E5_TUNED_GAMMA}`]));
    expect(keys.filter((k) => k.startsWith('hyperdistill'))).toHaveLength(1);
    expect(E5_QUICK.tune).toBeNull();
    expect(E5_QUICK.seeds).toEqual([0]);
    expect(E5_QUICK.testTasks).toBe(100);
  });

  it('summarises the tuning run: a γ row (✓ when the rows use the chosen γ) and gammaTuning in results.json', async () => {
    const key = `hyperdistill${E5_TUNED_GAMMA}`;
    const perSeed: SeedRecord[] = [0, 1].map((seed) => ({
      seed,
      json: {
        seed,
        methods: ['fo', 'oneStep', 'drmad', 'neumann', key].map(
          (k, i): E5SeedMethod => ({
            key: k as E5SeedMethod['key'],
            label: k,
            mse: 0.5 + 0.1 * i,
            perTask: [0.5 + 0.1 * i + 0.01 * seed, 0.6 + 0.1 * i],
            valMse: null,
            records: [{ m: 1, valLoss: 1, updates: 1, jvps: 0, hvps: 0, fitJvps: 0, ms: 1, peakBytes: 1, method: k, seed }],
            cosines: [],
            theta: NaN,
          }),
        ),
      },
    }));
    const tune: E5Tuning = {
      gammas: [0.9, 0.99, 0.999, 0.9999],
      seeds: [1000],
      episodes: 10,
      valTasks: 200,
      valMse: { '0.9': 0.37, '0.99': 0.356, '0.999': 0.349, '0.9999': 0.35 },
      chosen: E5_TUNED_GAMMA,
      used: E5_TUNED_GAMMA,
    };
    const res = await hyperdistillSinusoidSection.summarise(JSON.parse(JSON.stringify(perSeed)), {
      quick: false,
      log: () => {},
      extras: { tune },
    });
    const row = res.summary.find((r) => /γ tuning/.test(r.metric))!;
    expect(row.mark).toBe('✓');
    expect(row.value).toMatch(/chosen γ=0\.999/);
    const json = res.json as {
      gammaTuning: E5Tuning;
      hyperdistill: { key: string; how: string };
      hyperLrDecay: string;
    };
    expect(json.gammaTuning.chosen).toBe(E5_TUNED_GAMMA);
    expect(json.hyperdistill.key).toBe(key);
    expect(json.hyperdistill.how).toMatch(/tuned on meta-validation/);
    expect(json.hyperLrDecay).toBe('linear');
    expect(res.summary.filter((r) => /meta-test MSE, /.test(r.metric))).toHaveLength(5);
  });
});
