/** @file The report's built-in `selftest` section: the device doctor plus an axpy timing sweep, so the pipeline runs end to end. */
import { doctor, selfTest } from './doctor';
import { lineChart, type Row } from './plots';
import { markCheck } from './intervals';
import type { ReportSection, SectionContext, SectionResult } from './section';

async function run(ctx: SectionContext): Promise<SectionResult> {
  const report = await doctor(ctx.device);
  // Small sizes in the quick mode: this section is a pipeline check, not a benchmark.
  const sizes = ctx.quick ? [1 << 12, 1 << 14, 1 << 16, 1 << 18] : [1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22];
  const repeats = ctx.quick ? 3 : 5;
  const rows: Row[] = [];
  let allOk = report.selftest.ok;
  const progress = ctx.progress(sizes.length * repeats, 'axpy sweep');
  try {
    for (const n of sizes) {
      const ms: number[] = [];
      for (let r = 0; r < repeats; r++) {
        const t = await selfTest(ctx.device, n);
        allOk &&= t.ok;
        ms.push(t.ms);
        progress.increment(1, { metric: `n=${n} ${t.ms.toFixed(2)} ms` });
      }
      const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
      rows.push({
        elements: n,
        adapter: ctx.device.adapter.name,
        meanMs: mean,
        minMs: Math.min(...ms),
        maxMs: Math.max(...ms),
      });
    }
  } finally {
    progress.stop();
  }
  const largest = rows[rows.length - 1];
  // axpy reads x and y and writes y: 12 bytes per element (upload and readback included in the timing).
  const gbPerS = (12 * Number(largest.elements)) / (Number(largest.minMs) * 1e6);
  return {
    summary: [
      {
        metric: 'axpy self-test max |error| (2^20 floats)',
        value: report.selftest.maxAbsError,
        paper: '–',
        goal: '≤ 1e-6',
        mark: markCheck(report.selftest.ok),
      },
      {
        metric: 'axpy sweep matches CPU at every size',
        value: allOk ? 'yes' : 'no',
        paper: '–',
        goal: 'yes',
        mark: markCheck(allOk),
      },
      {
        metric: `axpy effective bandwidth at 2^${Math.log2(Number(largest.elements))} (GB/s)`,
        value: gbPerS,
        paper: '–',
        goal: '–',
        mark: null,
      },
    ],
    figures: [
      {
        name: 'axpy-time',
        spec: lineChart({
          title: 'axpy time vs size',
          subtitle: `${ctx.device.adapter.name}: mean with min–max band over ${repeats} runs, readback included`,
          x: { field: 'elements', title: 'elements' },
          y: { field: 'meanMs', title: 'time (ms)' },
          series: { field: 'adapter', title: 'adapter' },
          band: { lower: 'minMs', upper: 'maxMs' },
          logX: true,
          logY: true,
          data: rows,
        }),
      },
    ],
    json: { doctor: report, sweep: rows },
  };
}

export const selftestSection: ReportSection = {
  id: 'selftest',
  title: 'Device self-test',
  paperFigure: 'no paper figure (checks the adapter and the report pipeline)',
  run,
};
