/** @file `metagrad bench` keeps a run's results when the previous results file is corrupt, and merges per-bench stamps. */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mergeBenchResults, readPreviousResults, type BenchRecord } from '../../apps/cli/src/bench-results';

const stamp: BenchRecord = { date: '2026-12-06T00:00:00.000Z', commit: 'abc1234', quick: false };

describe('bench results file', () => {
  it.each([
    ['not JSON', '{"dispatch": {"rows": ['],
    ['an array', '[1, 2]'],
    ['null', 'null'],
    ['a string', '"results"'],
  ])('a previous file that is %s is moved aside with a warning, and the new results are kept', (_what, text) => {
    const dir = mkdtempSync(join(tmpdir(), 'metagrad-bench-'));
    const file = join(dir, 'llvmpipe.json');
    writeFileSync(file, text);
    const warnings: string[] = [];
    const previous = readPreviousResults(file, (m) => warnings.push(m));
    expect(previous).toEqual({});
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/llvmpipe\.json was unreadable .*moved it to .*llvmpipe\.json\.corrupt-/);
    const aside = readdirSync(dir).filter((f) => f.startsWith('llvmpipe.json.corrupt-'));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(dir, aside[0]), 'utf8')).toBe(text);
    const merged = mergeBenchResults(previous, { dispatch: { rows: [1] } }, stamp, { name: 'llvmpipe' }, ['dispatch', 'kernels']);
    expect(merged).toEqual({ adapter: { name: 'llvmpipe' }, recorded: { dispatch: stamp }, dispatch: { rows: [1] } });
  });

  it('a missing file is no previous results', () => {
    const dir = mkdtempSync(join(tmpdir(), 'metagrad-bench-'));
    expect(
      readPreviousResults(join(dir, 'none.json'), () => {
        throw new Error('no warning expected');
      }),
    ).toEqual({});
  });

  it('keeps earlier benches with their stamps, dates legacy entries as upper bounds, and ignores a malformed recorded field', () => {
    const earlier: BenchRecord = { date: '2026-01-01T00:00:00.000Z', commit: 'old', quick: false };
    const merged = mergeBenchResults(
      { date: '2025-06-01', adapter: 'old', recorded: { kernels: earlier }, kernels: { k: 1 }, train: { t: 1 } },
      { dispatch: { d: 2 } },
      stamp,
      'new',
      ['dispatch', 'kernels', 'train'],
    );
    expect(merged.recorded).toEqual({
      kernels: earlier,
      train: { date: '2025-06-01', commit: null, quick: false, dateIsUpperBound: true },
      dispatch: stamp,
    });
    expect(merged).toMatchObject({ kernels: { k: 1 }, train: { t: 1 }, dispatch: { d: 2 }, adapter: 'new' });
    expect(mergeBenchResults({ recorded: 'garbage', kernels: {} }, {}, stamp, 'a', ['kernels']).recorded).toEqual({});
    expect(mergeBenchResults({ recorded: { kernels: 5, train: { date: 3 }, meta: earlier } }, {}, stamp, 'a', ['kernels']).recorded).toEqual({ meta: earlier });
  });
});
