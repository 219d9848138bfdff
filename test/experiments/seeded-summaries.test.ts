/**
 * @file The seeded sections' `summarise` on synthetic per-seed JSON (no device, no training): results.json gains
 * `seeds` and `pairs` ({ a, b, meanDiff, ci95 }), E3 `finalAcc`/`bestAcc`, E5 one HyperDistill setting in every row
 * (chosen on meta-validation when every seed has it, else the configured γ), E7 paired per-task intervals; every row
 * has paper and goal columns and a ✓/≈/✗ (or null) mark that follows the intervals.
 */
import { describe, expect, it } from 'vitest';
import {
  E5_QUICK,
  E7_QUICK,
  amamlRegressionSection,
  evogradRotationSection,
  evogradToySection,
  hyperdistillSinusoidSection,
  mwnLabelNoiseSection,
  type E5SeedMethod,
  type E7Result,
} from '@metagrad/experiments/node';
import { findPair, type PairDiff, type SeedRecord, type SummaryContext, type SummaryRow } from '@metagrad/experiments';

const ctx = (extras: Record<string, unknown> = {}): SummaryContext => ({ quick: true, log: () => {}, extras });
/** A fixed pseudo-random stream, so the synthetic data never change. */
function noise(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296 - 0.5;
}
function checkRows(rows: SummaryRow[]): void {
  for (const r of rows) {
    expect(typeof r.paper, r.metric).toBe('string');
    expect(typeof r.goal, r.metric).toBe('string');
    expect([null, '✓', '≈', '✗'], r.metric).toContain(r.mark);
  }
}
function checkPairs(pairs: PairDiff[]): void {
  expect(pairs.length).toBeGreaterThan(0);
  for (const p of pairs) {
    expect(Object.keys(p)).toEqual(expect.arrayContaining(['a', 'b', 'meanDiff', 'ci95']));
    expect(p.ci95[0]).toBeLessThanOrEqual(p.meanDiff + 1e-12);
    expect(p.ci95[1]).toBeGreaterThanOrEqual(p.meanDiff - 1e-12);
  }
}

describe('E5 summary from per-seed JSON', () => {
  const methods = ['fo', 'oneStep', 'drmad', 'neumann', 'hyperdistill0.9', 'hyperdistill0.99'] as const;
  // Per-task MSE: a shared task difficulty plus a method offset plus small noise, so pairing over tasks resolves gaps.
  const offset: Record<string, number> = {
    fo: 0.55,
    oneStep: 0.56,
    drmad: 1.1,
    neumann: 0.5,
    'hyperdistill0.9': 0.33,
    'hyperdistill0.99': 0.4,
  };
  const seedJson = (seed: number, withVal: boolean) => {
    const r = noise(seed + 1);
    const tasks = Array.from({ length: 40 }, () => 0.3 * r());
    return {
      seed,
      methods: methods.map((key): E5SeedMethod => {
        const perTask = tasks.map((t) => offset[key] + t + 0.01 * r());
        return {
          key,
          label: key,
          mse: perTask.reduce((a, b) => a + b, 0) / perTask.length,
          perTask,
          valMse: withVal && key.startsWith('hyperdistill') ? offset[key] + (key === 'hyperdistill0.99' ? -0.5 : 0) : null,
          records: [1, 2].map((m) => ({
            m,
            valLoss: offset[key],
            updates: 10,
            jvps: 10,
            hvps: 0,
            fitJvps: 0,
            ms: 5,
            peakBytes: 1000,
            method: key,
            seed,
          })),
          cosines: E5_QUICK.diagnoseAt.map((m) => ({
            method: key,
            seed,
            m,
            cosine: key === 'fo' ? 0.5 : key === 'oneStep' ? 0.6 : 0.7 + 0.01 * r(),
            cosineSecondOrder: 0.5,
            normRatio: 1,
            normRatioSecondOrder: 1,
          })),
          theta: key.startsWith('hyperdistill') ? 1 : (null as unknown as number),
        };
      }),
    };
  };

  it('pairs every method over seeds and shared tasks, shows one HyperDistill γ chosen on meta-validation, marks the paper order', async () => {
    const perSeed: SeedRecord[] = [0, 1, 2].map((s) => ({
      seed: s,
      json: JSON.parse(JSON.stringify(seedJson(s, true))),
    }));
    const cost = [
      { key: 'oneStep', label: '1-step', ms: 10, peakAboveStart: 0, jvps: 1, hvps: 0 },
      { key: 'hyperdistill0.99', label: 'HD', ms: 12, peakAboveStart: 0, jvps: 1, hvps: 0 },
    ];
    const res = await hyperdistillSinusoidSection.summarise(perSeed, ctx({ cost }));
    const json = res.json as { seeds: number[]; pairs: PairDiff[]; hyperdistill: { key: string; how: string } };
    expect(json.seeds).toEqual([0, 1, 2]);
    checkPairs(json.pairs);
    expect(json.pairs).toHaveLength(15); // 6 methods
    // Meta-validation prefers γ = 0.99 (its validation MSE is lower) although γ = 0.9 tests better: the rows follow validation.
    expect(json.hyperdistill).toEqual({
      key: 'hyperdistill0.99',
      how: 'chosen on meta-validation',
      valMse: expect.any(Object),
    });
    const rows = res.summary;
    checkRows(rows);
    expect(rows.filter((r) => /HD γ=0\.9\b|hyperdistill0\.9\b/.test(r.metric))).toEqual([]);
    const row = (re: RegExp) => rows.find((r) => re.test(r.metric))!;
    expect(row(/MSE hyperdistill0\.99 − N\.IFT/).mark).toBe('✓');
    expect(row(/MSE N\.IFT − 1-step/).mark).toBe('✓');
    expect(row(/MSE 1-step − DrMAD/).mark).toBe('✓');
    expect(row(/MSE FO − 1-step/).mark).toBe('✓'); // 0.01 apart, resolved by pairing over 3 seeds × 40 tasks
    expect(row(/time per inner opt/).value).toBe(1.2);
    expect(row(/time per inner opt/).mark).toBe('✓');
  });

  it('falls back to the configured γ without meta-validation, and leaves the time row out without the cost extra', async () => {
    const perSeed: SeedRecord[] = [0, 1].map((s) => ({
      seed: s,
      json: JSON.parse(JSON.stringify(seedJson(s, false))),
    }));
    const res = await hyperdistillSinusoidSection.summarise(perSeed, ctx());
    expect((res.json as { hyperdistill: { key: string; how: string } }).hyperdistill.how).toBe('configured (no meta-validation)');
    expect((res.json as { hyperdistill: { key: string } }).hyperdistill.key).toBe(`hyperdistill${E5_QUICK.reportGamma}`);
    expect(res.summary.some((r) => /time per inner/.test(r.metric))).toBe(false);
  });
});

describe('E7 summary from per-seed JSON', () => {
  it('pairs methods over seeds × test tasks per panel and counts the panels where A-MAML is lowest or tied', async () => {
    const methods = ['no meta-learning', ...E7_QUICK.methods];
    const level: Record<string, number> = {
      'no meta-learning': 0.8,
      'A-MAML': 0.4,
      MAML: 0.45,
      'MAML-1': 0.5,
      FOMAML: 0.41,
      Reptile: 0.6,
      iMAML: 0.55,
    };
    const perSeed: SeedRecord[] = [0, 1, 2].map((seed) => {
      const r = noise(100 + seed);
      const res: E7Result = { final: [], curves: [] };
      for (const family of ['CosMixture', 'Alpine']) {
        const tasks = Array.from({ length: 5 }, () => 0.2 * r());
        for (const method of methods) {
          // Alpine: FOMAML clearly below A-MAML.
          const base = family === 'Alpine' && method === 'FOMAML' ? 0.3 : level[method];
          const perTask = tasks.map((t) => base + t + 0.005 * r());
          const nrmse = perTask.reduce((a, b) => a + b, 0) / perTask.length;
          res.final.push({ family, setting: '50shot-50val', method, nrmse, perTask });
          res.curves.push({ family, setting: '50shot-50val', method, step: 0, nrmse: 1 }, { family, setting: '50shot-50val', method, step: 10, nrmse });
        }
      }
      return { seed, json: res };
    });
    const out = await amamlRegressionSection.summarise(perSeed, ctx());
    checkRows(out.summary);
    const json = out.json as { seeds: number[]; pairs: (PairDiff & { panel: string })[]; final: { nrmse: number }[] };
    expect(json.seeds).toEqual([0, 1, 2]);
    checkPairs(json.pairs);
    expect(json.pairs.filter((p) => p.panel === 'CosMixture 50shot-50val')).toHaveLength(21);
    const [cos, alpine, count] = out.summary;
    expect(cos.mark).toBe('✓'); // 0.40 vs FOMAML 0.41, resolved by pairing
    expect(alpine.mark).toBe('✗');
    expect(count.value).toBe('1 of 2');
    expect(count.mark).toBe('✗');
    expect(out.figures.map((f) => f.name)).toEqual(['nrmse-vs-adaptation']);

    // A diverged method (NaN test errors, null once through JSON) is left out of the intervals instead of failing the section.
    const broken = JSON.parse(JSON.stringify(perSeed)) as SeedRecord[];
    for (const s of broken) for (const f of (s.json as E7Result).final) if (f.method === 'Reptile') f.perTask = f.perTask.map(() => null as unknown as number);
    const partial = await amamlRegressionSection.summarise(broken, ctx());
    const pairs = (partial.json as { pairs: PairDiff[] }).pairs;
    expect(pairs.some((p) => p.a === 'Reptile' || p.b === 'Reptile')).toBe(false);
    expect(partial.summary[0].mark).toBe('✓');
  });
});

describe('E3 and E2 summaries from per-seed JSON', () => {
  it('E3: finalAcc and bestAcc per method (means over seeds), paired gains against the goals', async () => {
    const acc: Record<string, number[]> = {
      baseline: [0.8, 0.78, 0.76],
      't1-t2': [0.8, 0.82, 0.83],
      'evograd-k2': [0.8, 0.815, 0.825],
    };
    const perSeed: SeedRecord[] = [0, 1, 2].map((seed) => ({
      seed,
      json: {
        runs: Object.entries(acc).map(([method, a]) => {
          const byEpoch = a.map((x) => x + 0.001 * seed);
          return {
            method,
            seed,
            testAcc: byEpoch[2],
            accByEpoch: byEpoch,
            meanHypergradNorm: method === 'baseline' ? null : 1,
            curve: [{ loss: 0, weight: 1 }],
            seconds: 1,
          };
        }),
      },
    }));
    const out = await mwnLabelNoiseSection.summarise(perSeed, ctx());
    checkRows(out.summary);
    const json = out.json as {
      finalAcc: Record<string, number>;
      bestAcc: Record<string, number>;
      testAcc: Record<string, number>;
      pairs: PairDiff[];
      seeds: number[];
    };
    expect(json.seeds).toEqual([0, 1, 2]);
    expect(json.finalAcc.baseline).toBeCloseTo(76.1, 6);
    expect(json.bestAcc.baseline).toBeCloseTo(80.1, 6);
    expect(json.testAcc).toEqual(json.finalAcc);
    checkPairs(json.pairs);
    const gain = out.summary.find((r) => /T1–T2 − baseline/.test(r.metric))!;
    expect(gain.mark).toBe('✓'); // +7 points every seed
    expect(out.summary.find((r) => /EvoGrad − T1–T2/.test(r.metric))!.mark).toBe('✓'); // −0.5 every seed
  });

  it('E3: with per-image results, final accuracy is paired over seeds × the shared test images', async () => {
    // 200 test images; T1–T2 right on the baseline's hits plus 10 more, EvoGrad on T1–T2's minus 1, every seed.
    const images = 200;
    const hits = (n: number) => Array.from({ length: images }, (_, i) => (i < n ? 1 : 0));
    const right: Record<string, number> = { baseline: 140, 't1-t2': 150, 'evograd-k2': 149 };
    const perSeed: SeedRecord[] = [0, 1, 2].map((seed) => ({
      seed,
      json: {
        runs: Object.entries(right).map(([method, n]) => ({
          method,
          seed,
          testAcc: (n + seed) / images,
          accByEpoch: [0.5, (n + seed) / images],
          finalCorrect: hits(n + seed),
          meanHypergradNorm: method === 'baseline' ? null : 1,
          curve: [{ loss: 0, weight: 1 }],
          seconds: 1,
        })),
      },
    }));
    const out = await mwnLabelNoiseSection.summarise(perSeed, ctx());
    checkRows(out.summary);
    const json = out.json as { finalAcc: Record<string, number>; pairs: PairDiff[]; pairedOver: string; runs: object[] };
    expect(json.pairedOver).toBe('final: seeds × shared test images; best: seeds');
    expect(json.finalAcc.t1t2).toBeCloseTo(75.5, 6);
    const gain = findPair(json.pairs, 't1-t2 final', 'baseline final');
    expect(gain.meanDiff).toBeCloseTo(5, 6);
    // Every resample of images keeps the pairing: the 10 extra hits lie in the first 150 images of every seed.
    expect(gain.ci95[0]).toBeGreaterThan(0);
    expect(gain.ci95[1]).toBeLessThan(10.1);
    expect(out.summary.find((r) => /T1–T2 − baseline/.test(r.metric))!.mark).toBe('✓');
    // The per-image arrays stay in the per-seed files, not in results.json's runs.
    expect(json.runs.every((r) => !('finalCorrect' in r))).toBe(true);
  });

  it('E2: intervals over seeds, paired accuracy gain, goal band on the angle; one seed supports nothing (≈)', async () => {
    const run = (method: string, seed: number, angle: number, rot: number) => ({
      method,
      seed,
      angleDeg: angle,
      accRotated: rot,
      accUpright: 0.9,
      angleTrace: [0, angle],
      seconds: 1,
      meanHypergradNorm: 1,
    });
    const perSeed = (seeds: number[]): SeedRecord[] =>
      seeds.map((seed) => ({
        seed,
        json: {
          convention: { plus: 0.01, minus: 0.2 },
          runs: [run('baseline', seed, 0, 0.7), run('evograd', seed, 29 + seed, 0.86 + 0.01 * seed), run('t1-t2', seed, 31, 0.87)],
        },
      }));
    const three = await evogradRotationSection.summarise(perSeed([0, 1, 2]), ctx());
    checkRows(three.summary);
    checkPairs((three.json as { pairs: PairDiff[] }).pairs);
    const mark = (rows: SummaryRow[], re: RegExp) => rows.find((r) => re.test(r.metric))!.mark;
    expect(mark(three.summary, /learned angle, EvoGrad/)).toBe('✓');
    expect(mark(three.summary, /EvoGrad − baseline/)).toBe('✓');
    const one = await evogradRotationSection.summarise(perSeed([0]), ctx());
    expect(mark(one.summary, /learned angle, EvoGrad/)).toBe('≈');
    expect(mark(one.summary, /sign check/)).toBe('✓');
    expect((one.json as { pairedOver: string }).pairedOver).toBe('seeds');
    // With per-image results, the rotated accuracy pairs over seeds × the shared test images: one seed then
    // supports the gain (+15 points on 100 images, the baseline's hits a subset of EvoGrad's).
    const hits = (n: number) => Array.from({ length: 100 }, (_, i) => (i < n ? 1 : 0));
    const withImages = perSeed([0]).map((r) => {
      const json = r.json as { runs: { method: string; accRotated: number }[] };
      return { ...r, json: { ...json, runs: json.runs.map((x) => ({ ...x, rotatedCorrect: hits(Math.round(x.accRotated * 100)) })) } };
    });
    const imaged = await evogradRotationSection.summarise(withImages, ctx());
    checkRows(imaged.summary);
    expect((imaged.json as { pairedOver: string }).pairedOver).toBe('rotated accuracy: seeds × shared test images; the rest: seeds');
    const gain = findPair((imaged.json as { pairs: PairDiff[] }).pairs, 'evograd', 'baseline');
    expect(gain.meanDiff).toBeCloseTo(16, 6);
    expect(gain.ci95[0]).toBeGreaterThan(0);
    expect(mark(imaged.summary, /EvoGrad − baseline/)).toBe('✓');
  });

  it('E1: the study per seed; the GPU rows only with the gpu extra', async () => {
    const perSeed: SeedRecord[] = [];
    for (const seed of [0, 1, 2]) perSeed.push({ seed, json: await evogradToySection.runSeed({} as never, seed) });
    const out = await evogradToySection.summarise(JSON.parse(JSON.stringify(perSeed)), ctx());
    checkRows(out.summary);
    expect(out.summary.some((r) => /GPU/.test(r.metric))).toBe(false);
    expect((out.json as { seeds: number[] }).seeds).toEqual([0, 1, 2]);
    checkPairs((out.json as { pairs: PairDiff[] }).pairs);
  });
});
