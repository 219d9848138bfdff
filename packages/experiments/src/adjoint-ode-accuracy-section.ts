/** @file E6 as a report section: relative error of the adjoint gradient vs tracked states (Adjoint-MAML, Appendix A). */
import type { ReportSection, SectionResult } from './section';
import { lineChart } from './plots';
import { markCheck } from './intervals';
import { E6_FULL, E6_QUICK, formatAdjointOdeTable, runAdjointOdeAccuracy, type AdjointOdeRow } from './adjoint-ode-accuracy';

export const adjointOdeAccuracySection: ReportSection = {
  id: 'adjoint-ode-accuracy',
  title: 'E6: adjoint ODE gradient accuracy vs tracked states',
  paperFigure: 'Adjoint-MAML, Appendix A (Table 4)',
  async run(ctx): Promise<SectionResult> {
    const grid = ctx.quick ? E6_QUICK : E6_FULL;
    const progress = ctx.progress(grid.Ts.length * grid.states.length, 'T × states');
    let rows: AdjointOdeRow[];
    try {
      ({ rows } = await runAdjointOdeAccuracy({
        quick: ctx.quick,
        onCell: ([heun]) => progress.increment(1, { metric: `T=${heun.T} n=${heun.states} heun ${heun.relError.toExponential(1)}` }),
      }));
    } finally {
      progress.stop();
    }
    ctx.log(`\n${formatAdjointOdeTable({ rows })}`);
    const atT1 = (method: AdjointOdeRow['method'], states: number) =>
      rows.find((r) => r.method === method && r.T === 1 && r.states === states)?.relError ?? NaN;
    const at = (states: number) => atT1('adjoint-heun', states);
    const euler10 = atT1('adjoint-euler', 10);
    const euler100 = atT1('adjoint-euler', 100);
    // First order: ten times the states should cut the error about tenfold (accept 5–20×).
    const eulerOrder = Math.log10(euler10 / euler100);
    return {
      summary: [
        {
          metric: 'Heun adjoint rel. error, T=1, 10 states',
          value: at(10),
          paper: 'Table 4 (Heun, n=10)',
          goal: '≤ 5e-3',
          mark: markCheck(at(10) <= 5e-3),
        },
        {
          metric: 'Heun adjoint rel. error, T=1, 100 states',
          value: at(100),
          paper: 'Table 4 (Heun, n=100)',
          goal: '≤ 5e-5',
          mark: markCheck(at(100) <= 5e-5),
        },
        {
          metric: 'Euler adjoint observed order (T=1, 10→100 states)',
          value: eulerOrder,
          paper: 'first order',
          goal: '0.7–1.3',
          mark: markCheck(eulerOrder > 0.7 && eulerOrder < 1.3),
        },
      ],
      figures: [
        {
          name: 'error-vs-states',
          spec: lineChart({
            title: 'Adjoint gradient relative error vs tracked states',
            subtitle: 'dy/dt = −2t³ − 2ty, L = (y(T) − 3)⁶, float32',
            data: rows.filter((r) => r.T === 1 || r.T === grid.Ts[grid.Ts.length - 1]).map((r) => ({ ...r, horizon: `T=${r.T}` })),
            x: { field: 'states', title: 'tracked states' },
            y: { field: 'relError', title: 'relative error' },
            series: { field: 'method', title: 'method' },
            variant: { field: 'horizon', title: 'horizon' },
            logX: true,
            logY: true,
          }),
        },
      ],
      json: { rows },
    };
  },
};
