/** @file Task generators: the EvoGrad toy's closed forms, regression families' ranges and formulas, standard scaling. */
import { describe, expect, it } from 'vitest';
import { pearsonCorrelation } from '@metagrad/meta';
import {
  TOY_TRAJECTORY_STARTS,
  toyEvogradHypergradient,
  toyHypergradient,
  toyLambdaGrid,
  toyOptimalX,
  toyTrainGradX,
  toyTrainLoss,
  toyValLoss,
} from '../../packages/models/src/data/evograd-toy';
import { Rng } from '../../packages/models/src/data/random';
import { applyScaler, fitRegressionScaling, fitStandardScaler, invertScaler, scaleRegressionData } from '../../packages/models/src/data/scaling';
import { alpineFamily, cosMixtureFamily, sampleEpisode, sampleMetaBatch, sampleTasks, sinusoidFamily } from '../../packages/models/src/data/tasks';

describe('EvoGrad 1-D toy', () => {
  it('x*(λ) minimises f_T and the hypergradient matches central differences of f_V(x*(λ))', () => {
    for (const lambda of toyLambdaGrid(20)) {
      const x = toyOptimalX(lambda);
      expect(toyTrainGradX(x, lambda)).toBeCloseTo(0, 12);
      expect(toyTrainLoss(x + 1e-3, lambda)).toBeGreaterThan(toyTrainLoss(x, lambda));
      const h = 1e-5;
      const numeric = (toyValLoss(toyOptimalX(lambda + h)) - toyValLoss(toyOptimalX(lambda - h))) / (2 * h);
      expect(toyHypergradient(lambda)).toBeCloseTo(numeric, 8);
    }
    expect(toyHypergradient(1)).toBe(0); // x* = 0.5 is the validation optimum
    expect(toyHypergradient(0.5)).toBeCloseTo(-0.5 / 1.5 ** 3, 14);
  });

  it("grid spans [0.1, 2] and the trajectory starts are the paper's", () => {
    const grid = toyLambdaGrid();
    expect(grid.length).toBe(100);
    expect(grid[0]).toBeCloseTo(0.1, 14);
    expect(grid[99]).toBeCloseTo(2, 14);
    expect(TOY_TRAJECTORY_STARTS.length).toBe(5);
  });

  it('the EvoGrad estimate equals central differences through the weighted combination', () => {
    const rng = new Rng(4);
    for (let trial = 0; trial < 10; trial++) {
      const x = rng.normal();
      const lambda = rng.uniform(0.1, 2);
      const eps = Array.from({ length: 2 + trial }, () => rng.normal());
      // f_V(x*) as a function of λ with the perturbations held fixed.
      const valAt = (l: number) => {
        const copies = eps.map((e) => x + e);
        const w = copies.map((xk) => Math.exp(-toyTrainLoss(xk, l) / 0.5));
        const total = w.reduce((a, b) => a + b, 0);
        return toyValLoss(copies.reduce((s, xk, k) => s + (w[k] / total) * xk, 0));
      };
      const h = 1e-6;
      const numeric = (valAt(lambda + h) - valAt(lambda - h)) / (2 * h);
      expect(toyEvogradHypergradient(x, lambda, eps, 0.5)).toBeCloseTo(numeric, 6);
    }
  });

  it('with many samples the mean estimate correlates with the closed form (E1 sanity)', () => {
    const rng = new Rng(1);
    const lambdas = toyLambdaGrid(30);
    const means = Array.from(lambdas, (lambda) => {
      let sum = 0;
      for (let t = 0; t < 200; t++)
        sum += toyEvogradHypergradient(
          rng.normal(),
          lambda,
          Array.from({ length: 10 }, () => rng.normal()),
        );
      return sum / 200;
    });
    const exact = Array.from(lambdas, toyHypergradient);
    expect(pearsonCorrelation(means, exact)).toBeGreaterThan(0.9);
  });

  it('pearsonCorrelation: ±1 for exact linear relations, invariant to shift and scale; lengths must match', () => {
    const a = [1, 2, 4, 7];
    expect(
      pearsonCorrelation(
        a,
        a.map((v) => 3 * v - 5),
      ),
    ).toBeCloseTo(1, 12);
    expect(
      pearsonCorrelation(
        a,
        a.map((v) => -0.5 * v + 2),
      ),
    ).toBeCloseTo(-1, 12);
    expect(() => pearsonCorrelation(a, [1, 2])).toThrow(/length 4 and 2/);
  });
});

describe('regression task families', () => {
  it('sinusoid: parameters in range, y = A sin(x − φ), x ∈ [−5, 5]', () => {
    const tasks = sampleTasks(sinusoidFamily, 500, 1);
    expect(tasks.every((t) => t.amplitude >= 0.1 && t.amplitude < 5 && t.phase >= 0 && t.phase < Math.PI)).toBe(true);
    expect(Math.max(...tasks.map((t) => t.amplitude))).toBeGreaterThan(4.8);
    const task = tasks[0];
    const data = sinusoidFamily.sampleData(task, 50, 2);
    expect([data.n, data.inputDim, data.x.length, data.y.length]).toEqual([50, 1, 50, 50]);
    for (let i = 0; i < 50; i++) {
      expect(Math.abs(data.x[i])).toBeLessThanOrEqual(5);
      expect(data.y[i]).toBeCloseTo(task.amplitude * Math.sin(data.x[i] - task.phase), 5);
    }
  });

  it('CosMixture: parameters in range, formula of eq. 9, inputs in [−1, 1]²', () => {
    for (const task of sampleTasks(cosMixtureFamily, 200, 3)) {
      expect(task.amplitude).toBeGreaterThanOrEqual(0.1);
      expect(task.amplitude).toBeLessThan(1);
      expect(task.frequency).toBeGreaterThanOrEqual(0.5 * Math.PI);
      expect(task.frequency).toBeLessThan(2 * Math.PI);
      expect(task.phase).toBeGreaterThanOrEqual(3);
      expect(task.phase).toBeLessThan(6);
    }
    const task = { amplitude: 0.5, frequency: Math.PI, phase: 4 };
    const [y] = cosMixtureFamily.evaluate(task, [0.3, -0.7]);
    const expected = -0.05 * (Math.cos(Math.PI * 0.3 + 4) + Math.cos(-Math.PI * 0.7 + 4)) - (0.09 + 0.49);
    expect(y).toBeCloseTo(expected, 6);
    const data = cosMixtureFamily.sampleData(task, 100, 1);
    expect([data.x.length, data.y.length, data.inputDim]).toEqual([200, 100, 2]);
    expect(data.x.every((v) => v >= -1 && v < 1)).toBe(true);
  });

  it('Alpine: phases in ±5π/12, formula of eq. 10, inputs in [−10, 10]², non-negative outputs', () => {
    const limit = (5 * Math.PI) / 12;
    for (const task of sampleTasks(alpineFamily, 200, 4)) {
      expect(task.phases.every((p) => p >= -limit && p < limit)).toBe(true);
    }
    const task = { phases: [0.2, -1] as [number, number] };
    const [y] = alpineFamily.evaluate(task, [3, -8]);
    const expected = Math.abs(3 * Math.sin(3.2) + 0.3) + Math.abs(-8 * Math.sin(-9) - 0.8);
    expect(y).toBeCloseTo(expected, 5);
    const data = alpineFamily.sampleData(task, 100, 1);
    expect(data.x.every((v) => v >= -10 && v < 10)).toBe(true);
    expect(data.y.every((v) => v >= 0)).toBe(true);
  });

  it('tasks, episodes and meta-batches are reproducible; support and query differ', () => {
    expect(sampleTasks(alpineFamily, 5, 9)).toEqual(sampleTasks(alpineFamily, 5, 9));
    expect(sampleTasks(alpineFamily, 3, 9)).toEqual(sampleTasks(alpineFamily, 5, 9).slice(0, 3));
    expect(sampleTasks(alpineFamily, 3, 9)).not.toEqual(sampleTasks(alpineFamily, 3, 10));
    const task = cosMixtureFamily.sampleTask(1);
    const episode = sampleEpisode(cosMixtureFamily, task, { nSupport: 50, nQuery: 50, seed: 2 });
    expect(Array.from(episode.support.x)).not.toEqual(Array.from(episode.query.x));
    expect(sampleEpisode(cosMixtureFamily, task, { nSupport: 50, nQuery: 50, seed: 2 })).toEqual(episode);

    const batch = sampleMetaBatch(sinusoidFamily, { metaBatch: 10, nSupport: 10, nQuery: 10, seed: 5 });
    expect(batch.tasks.length).toBe(10);
    expect([batch.support.batch, batch.support.n, batch.support.x.length, batch.query.y.length]).toEqual([10, 10, 100, 100]);
    // Row b of the stacked batch belongs to task b.
    const t3 = batch.tasks[3];
    for (let i = 0; i < 10; i++) {
      const x = batch.query.x[30 + i];
      expect(batch.query.y[30 + i]).toBeCloseTo(t3.amplitude * Math.sin(x - t3.phase), 5);
    }
    expect(sampleMetaBatch(sinusoidFamily, { metaBatch: 10, nSupport: 10, nQuery: 10, seed: 5 })).toEqual(batch);
  });
});

describe('standard scaling', () => {
  it('fits per-column mean/std over several tasks, applies and inverts', () => {
    const tasks = sampleTasks(alpineFamily, 20, 1).map((task, i) => alpineFamily.sampleData(task, 50, 100 + i));
    const scaling = fitRegressionScaling(tasks);
    expect(scaling.x.dim).toBe(2);
    expect(scaling.y.dim).toBe(1);
    const scaled = tasks.map((t) => scaleRegressionData(t, scaling));
    const allX = scaled.flatMap((t) => Array.from(t.x));
    const allY = scaled.flatMap((t) => Array.from(t.y));
    for (const column of [0, 1]) {
      const values = allX.filter((_, i) => i % 2 === column);
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
      expect(mean).toBeCloseTo(0, 5);
      expect(variance).toBeCloseTo(1, 4);
    }
    expect(allY.reduce((a, b) => a + b, 0) / allY.length).toBeCloseTo(0, 5);
    const back = invertScaler(scaling.y, scaled[0].y);
    for (let i = 0; i < back.length; i++) expect(back[i]).toBeCloseTo(tasks[0].y[i], 4);
    expect(scaled[0].n).toBe(50);
  });

  it('hand-computed values, constant columns get std 1', () => {
    const scaler = fitStandardScaler([Float32Array.of(1, 5, 3, 5)], 2);
    expect(Array.from(scaler.mean)).toEqual([2, 5]);
    expect(Array.from(scaler.std)).toEqual([1, 1]);
    expect(Array.from(applyScaler(scaler, [4, 7]))).toEqual([2, 2]);
    expect(() => fitStandardScaler([Float32Array.of(1, 2, 3)], 2)).toThrow(/not rows of 2/);
  });
});
