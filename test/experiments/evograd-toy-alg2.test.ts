/**
 * @file E1 follows Algorithm 2 of the EvoGrad paper (and the authors' notebook): x takes its SGD step (lr 0.1) before
 * λ's hypergradient is estimated, so the estimate is taken at the updated x, not at the fresh x (issue 18, item 3).
 */
import { describe, expect, it } from 'vitest';
import { Rng, TOY_TAU, toyEvogradHypergradient, toyLambdaGrid, toyTrainGradX } from '@metagrad/models';
import { toyStudy } from '@metagrad/experiments/node';

describe('E1 study: estimate at the updated x (Algorithm 2)', () => {
  it('each trial steps x once (lr 0.1) on f_T before the EvoGrad estimate', () => {
    const lambdas = 3;
    const trials = 4;
    const seed = 7;
    const out = toyStudy(lambdas, trials, seed);
    const grid = toyLambdaGrid(lambdas);
    for (const K of [2, 10]) {
      const rng = new Rng(seed * 1000 + K);
      for (const [i, lambda] of grid.entries()) {
        let sum = 0;
        for (let t = 0; t < trials; t++) {
          const x0 = rng.normal();
          const x = x0 - 0.1 * toyTrainGradX(x0, lambda);
          const eps = Array.from({ length: K }, () => rng.normal());
          sum += toyEvogradHypergradient(x, lambda, eps, TOY_TAU);
        }
        const row = out.rows.find((r) => r.K === K && r.lambda === grid[i])!;
        expect(row.mean).toBeCloseTo(sum / trials, 12);
      }
    }
  });
});
