/**
 * @file The library quick start (README block = examples/library/quick-start.ts, kept identical by test/docs) uses
 * no type assertions: `BilevelProblem<Θ, Λ, B>` types the losses' θ and λ, so the file has no ` as ` at all
 * (`pnpm typecheck` compiles it; this guards against casts creeping back in).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const source = readFileSync(new URL('../../examples/library/quick-start.ts', import.meta.url), 'utf8');

describe('quick start types', () => {
  it('has no type assertions (no ` as `, no `<T>x` casts, no non-null `!` on parameter trees)', () => {
    const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    expect(code.match(/\bas\s+(?!const\b)[A-Za-z{[(]/g) ?? []).toEqual([]);
    expect(code).toContain('BilevelProblem<MlpParams, Tensor, Batch>');
  });
});
