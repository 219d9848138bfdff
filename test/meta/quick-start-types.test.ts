/**
 * @file The library quick start (README block = examples/library/quick-start.ts, kept identical by test/docs) uses
 * no type assertions: `BilevelProblem<Θ, Λ, B>` types the losses' θ and λ, so the file has no ` as ` at all
 * (`pnpm typecheck` compiles it; this guards against casts creeping back in). `typesOnly` below is checked by
 * `pnpm typecheck`: results carry Λ and the intermediates Θ, one estimator serves any problem.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { Tensor } from '@metagrad/tensor';
import type { MlpParams } from '@metagrad/models';
import { EvoGrad, NeumannIFT, OneStepLookahead, OnlineTrainer, UnrolledRMD, type BilevelProblem } from '@metagrad/meta';

const source = readFileSync(new URL('../../examples/library/quick-start.ts', import.meta.url), 'utf8');

describe('quick start types', () => {
  it('has no type assertions (no ` as `, no `<T>x` casts, no non-null `!` on parameter trees)', () => {
    const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    expect(code.match(/\bas\s+(?!const\b)[A-Za-z{[(]/g) ?? []).toEqual([]);
    expect(code).toContain('BilevelProblem<MlpParams, Tensor, Batch>');
  });
});

/** Never called: `pnpm typecheck` checks these types (vitest's expectTypeOf is a no-op at run time). */
async function typesOnly(theta: MlpParams, lambda: Tensor, batch: { x: Tensor; y: Tensor }) {
  const problem: BilevelProblem<MlpParams, Tensor, typeof batch> = {
    trainLoss: (th, lm) => {
      expectTypeOf(th).toEqualTypeOf<MlpParams>();
      expectTypeOf(lm).toEqualTypeOf<Tensor>();
      return lm;
    },
    valLoss: (_th, lm) => lm,
  };
  const input = { problem, theta, lambda, trainBatch: batch, valBatch: batch, innerLr: 0.1, intermediates: true };
  const t1t2 = await new OneStepLookahead().estimate(input);
  expectTypeOf(t1t2.hypergrad).toEqualTypeOf<Tensor>();
  expectTypeOf(t1t2.thetaPrime).toEqualTypeOf<MlpParams | undefined>();
  const evo = new EvoGrad({ K: 2, tau: 0.1 });
  expectTypeOf(evo.sampleNoise(theta)).toEqualTypeOf<MlpParams>();
  const e = await evo.estimateWithNoise(input, theta);
  expectTypeOf(e.thetaStar).toEqualTypeOf<MlpParams | undefined>();
  expectTypeOf((await new UnrolledRMD({ steps: 2 }).estimate(input)).trajectory).toEqualTypeOf<MlpParams[] | undefined>();
  expectTypeOf((await new NeumannIFT({ iterations: 2 }).estimate(input)).series).toEqualTypeOf<MlpParams[] | undefined>();
  // One estimator instance serves problems of any tree types; the trainer infers Θ, Λ and B.
  const trainer = new OnlineTrainer({
    problem,
    estimator: evo,
    theta,
    lambda,
    order: 'meta-first',
    thetaOptimizer: { step() {} },
    lambdaOptimizer: { step() {} },
  });
  expectTypeOf(trainer).toEqualTypeOf<OnlineTrainer<MlpParams, Tensor, typeof batch>>();
}
void typesOnly;
