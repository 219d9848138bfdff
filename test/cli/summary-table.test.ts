/** @file The terminal summary of `metagrad report` fits 100 columns: long metrics, values and paper claims wrap, nothing is cut. */
import { describe, expect, it } from 'vitest';
import { formatSummaryTable } from '../../apps/cli/src/report-markdown';
import type { ReportResults, SectionRecord, SummaryRow } from '../../apps/cli/src/report';

const row = (metric: string, value: number | string, paper: string, mark: SummaryRow['mark'], goal = '–'): SummaryRow => ({ metric, value, paper, goal, mark });

function section(id: string, summary: SummaryRow[], extra: Partial<SectionRecord> = {}): SectionRecord {
  return {
    id,
    title: `E0: ${id}`,
    paperFigure: '—',
    status: 'ok',
    seconds: 1,
    summary,
    figures: [],
    json: null,
    ...extra,
  };
}

/** Rows as long as the real report's (the 144–150-column table of issue 17 came from these). */
const results: ReportResults = {
  kind: 'metagrad-report',
  version: 1,
  date: '2026-01-01T00:00:00.000Z',
  mode: 'quick',
  adapter: { name: 'llvmpipe', backend: 'opengles' } as ReportResults['adapter'],
  seconds: 123.4,
  sections: [
    section('evograd-toy', [
      row(
        'corr at K=2 over 5 seeds (mean ± std, min–max)',
        '0.912 ± 0.021 (0.88–0.94)',
        '0.751 (Fig. 2 as plotted)',
        '✓',
        "paper's value within our seeds' range",
      ),
      row('final (x, λ) gap to closed-form trajectory, K=2 / 10 / 100', '0.123 / 0.045 / 0.012', 'similar paths, closer with K (Fig. 3)', null),
      row('meta-test MSE, HD − 1-step (paired over seeds and tasks)', '-0.0312 [-0.0671, 0.00412]', '0.327 vs 0.670 (Table 4)', '≈', 'HD < 1-step'),
    ]),
    section('hyperdistill-sinusoid', [
      row(
        'meta-test MSE after meta-training: HyperDistill γ=0.99 vs the best of FO / 1-step / DrMAD / RMD',
        0.000123456,
        'HyperDistill ≤ the others (Table 2, sinusoid column)',
        '✗',
        'lowest or tied within the interval',
      ),
      row('x', 1, 'y', '✓', 'z'),
    ]),
    section('mwn-label-noise', [], {
      status: 'error',
      error:
        'DatasetError: Fashion-MNIST not found under /usr/share/dataset-fashion-mnist; install the Debian package dataset-fashion-mnist or set METAGRAD_FASHION_DIR to a folder holding the four IDX files',
    }),
  ],
};

describe('report summary table', () => {
  it('keeps every line within 100 columns', () => {
    const text = formatSummaryTable(results);
    const long = text.split('\n').filter((l) => [...l].length > 100);
    expect(long).toEqual([]);
  });

  it('keeps within a narrower width when asked', () => {
    for (const width of [80, 64]) {
      const lines = formatSummaryTable(results, width).split('\n');
      expect(lines.filter((l) => [...l].length > width)).toEqual([]);
    }
  });

  it('wraps without losing a word: every metric, value, paper claim and error is still there', () => {
    const words = formatSummaryTable(results).split(/\s+/).join(' ');
    // A word longer than its column (a path in an error) is split across lines; every other word stays whole.
    const check = (w: string) => w.length <= 16 && expect(words, w).toContain(w);
    for (const s of results.sections) {
      for (const r of s.summary) {
        for (const text of [r.metric, String(r.value === 0.000123456 ? '1.23e-4' : r.value), r.paper, r.goal]) {
          for (const w of text.split(/\s+/)) check(w);
        }
      }
      if (s.error) for (const w of s.error.split(/\s+/)) check(w);
    }
  });

  it('starts each result on a new line with its section and mark; continuation lines leave the section column blank', () => {
    const lines = formatSummaryTable(results).split('\n');
    const first = lines.findIndex((l) => l.startsWith('hyperdistill-sinusoid'));
    expect(lines[first]).toMatch(/✗$/);
    expect(lines[first + 1]).toMatch(/^\s{20,}\S/);
    expect(lines.some((l) => /^hyperdistill-sinusoid\s+x\s+1\s+y\s+z\s+✓$/.test(l))).toBe(true);
  });
});
