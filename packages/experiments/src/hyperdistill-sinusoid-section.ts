/** @file E5 as a report section: HyperDistill vs FO, 1-step, DrMAD and Neumann IFT on ANIL sinusoid regression (HyperDistill, Appendix G). */
import { legacyRows, type LegacyRow, type ReportSection, type SectionResult } from './section';
import { groupedBars, lineChart, type Row } from './plots';
import { E5_FULL, E5_QUICK, e5Methods, measureEpisodeCosts, runHyperdistillSinusoid, worstValLoss, type E5MethodResult } from './hyperdistill-sinusoid';

const PAPER_MSE: Record<string, number> = { fo: 0.567, oneStep: 0.67, drmad: 1.086, neumann: 0.502, hyperdistill: 0.327 };
const paperKey = (key: string): string => (key.startsWith('hyperdistill') ? 'hyperdistill' : key);
/** The paper's MSE for a method, '–' for the references it does not run (online RMD). */
const paperMse = (key: string): string => `${PAPER_MSE[paperKey(key)] ?? '–'}`;

const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
const std = (xs: number[]): number => {
  const m = mean(xs);
  return xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
};
const round = (x: number, d = 4): number => Number(x.toFixed(d));

/** Cost per inner optimisation, leaving out the first (pipeline compilation) and the ones with a θ fit. */
function cost(r: E5MethodResult, period: number, T: number) {
  const steady = r.records.filter((x) => x.m > 1 && x.fitJvps === 0);
  const rows = steady.length ? steady : r.records;
  const fits = r.records.filter((x) => x.fitJvps > 0);
  return {
    jvps: mean(rows.map((x) => x.jvps)),
    hvps: mean(rows.map((x) => x.hvps)),
    // LinearEstimation's 3T − 1 JVPs spread over its period, as the paper amortises it.
    fitJvpsPerInnerOpt: fits.length ? (3 * T - 1) / period : 0,
    msPerInnerOpt: mean(rows.map((x) => x.ms)),
    fitMs: fits.length ? mean(fits.map((x) => x.ms)) - mean(rows.map((x) => x.ms)) : 0,
    peakMiB: mean(rows.map((x) => x.peakBytes)) / 2 ** 20,
    updatesPerInnerOpt: mean(rows.map((x) => x.updates)),
  };
}

/** A line per method over the inner optimisations m (the paper's Figures 3 and 8). */
function byInnerOptimisation(name: string, title: string, subtitle: string, data: Row[], field: string, yTitle: string, logY = false) {
  return {
    name,
    spec: lineChart({
      title,
      subtitle,
      // HyperDistill's γ and online RMD's window are variants of one method: one colour, a dash each.
      data: data.map((r) => {
        const [, family, variant] = /^(HD|RMD online) (.+)$/.exec(String(r.method)) ?? [];
        return family ? { ...r, family: family === 'HD' ? 'HyperDistill' : family, variant: variant.replace(/^\((.*)\)$/, '$1') } : { ...r, family: r.method };
      }),
      x: { field: 'm', title: 'inner optimisation' },
      y: { field, title: yTitle },
      series: { field: 'family', title: 'method' },
      variant: { field: 'variant', title: 'variant' },
      logY,
    }),
  };
}

export const hyperdistillSinusoidSection: ReportSection = {
  id: 'hyperdistill-sinusoid',
  title: 'E5: HyperDistill vs FO, 1-step, DrMAD, Neumann IFT on ANIL sinusoid regression',
  paperFigure: 'HyperDistill, Appendix G (Table 4), Fig. 3, Table 3',
  async run(ctx): Promise<SectionResult> {
    const cfg = ctx.quick ? E5_QUICK : E5_FULL;
    const methods = e5Methods(cfg).length;
    const total = methods * (cfg.seeds.length * cfg.episodes + cfg.costRepeats + 1);
    const progress = ctx.progress(total, 'inner optimisations');
    let results: E5MethodResult[];
    let sideBySide: Awaited<ReturnType<typeof measureEpisodeCosts>>;
    try {
      results = await runHyperdistillSinusoid(cfg, ctx.device, (label, detail) => progress.increment(1, { metric: `${label} ${detail}` }));
      sideBySide = await measureEpisodeCosts(cfg, ctx.device, cfg.costRepeats, (label, detail) => progress.increment(1, { metric: `${label} ${detail}` }));
    } finally {
      progress.stop();
    }
    const timed = Object.fromEntries(sideBySide.map((c) => [c.key, c]));
    const byKey = Object.fromEntries(results.map((r) => [r.key, r]));
    const mse = Object.fromEntries(results.map((r) => [r.key, { mean: round(mean(r.mse)), std: round(std(r.mse)), perSeed: r.mse.map((x) => round(x)) }]));
    const cosine = Object.fromEntries(
      results.map((r) => [
        r.key,
        {
          mean: round(mean(r.cosines.map((c) => c.cosine))),
          secondOrder: round(mean(r.cosines.map((c) => c.cosineSecondOrder))),
          // The scale of the second-order part against the exact one (HyperDistill's π*; 1 is right).
          normRatioSecondOrder: round(mean(r.cosines.map((c) => c.normRatioSecondOrder))),
          points: r.cosines,
        },
      ]),
    );
    const costs = Object.fromEntries(results.map((r) => [r.key, cost(r, cfg.estimationPeriod, cfg.steps)]));
    const worstVal = Object.fromEntries(results.map((r) => [r.key, worstValLoss(r.records)]));
    const lines = results.map((r) => {
      const c = costs[r.key];
      return `${r.label.padEnd(24)} MSE ${mean(r.mse).toFixed(3)} ± ${std(r.mse).toFixed(3)} (paper ${paperMse(r.key)})  cos ${cosine[r.key].mean.toFixed(3)} / SO ${cosine[r.key].secondOrder.toFixed(3)} (‖SO‖ ×${cosine[r.key].normRatioSecondOrder.toFixed(2)})  JVPs ${c.jvps.toFixed(0)}+${c.fitJvpsPerInnerOpt.toFixed(1)} HVPs ${c.hvps.toFixed(0)}  ${timed[r.key].ms.toFixed(0)} ms  ${c.peakMiB.toFixed(2)} MiB  worst val ${worstVal[r.key].toPrecision(3)}${Number.isFinite(r.theta[0]) ? `  θ ${r.theta.map((t) => t.toFixed(2)).join('/')}` : ''}`;
    });
    ctx.log('\n' + lines.join('\n'));

    // The γ the paper found best at recovering the true hypergradient (Appendix I) stands for HyperDistill in the JSON.
    const hdKeys = results.filter((r) => r.key.startsWith('hyperdistill')).map((r) => r.key);
    const hdMain = hdKeys.includes('hyperdistill0.99') ? 'hyperdistill0.99' : hdKeys[hdKeys.length - 1];
    const m = (k: string): number => mse[k]?.mean ?? NaN;
    const cos = (k: string): number => cosine[k]?.mean ?? NaN;
    const bestHd = Math.min(...hdKeys.map(m));
    // Measured side by side (interleaved episodes), not from the training runs, which ran at different times.
    const timeRatio = timed[hdMain].ms / timed.oneStep.ms;
    const summary: LegacyRow[] = [
      ...results.map((r) => ({ metric: `meta-test MSE, ${r.label}`, value: round(mean(r.mse), 3), paper: paperMse(r.key), pass: null })),
      {
        metric: 'MSE ranking HyperDistill < Neumann ≈ FO < 1-step < DrMAD',
        value: results.map((r) => r.key).filter((k) => !k.startsWith('rmdOnline')).sort((a, b) => m(a) - m(b)).join(' < '),
        paper: 'HD 0.327 < N.IFT 0.502 ≈ FO 0.567 < 1-step 0.670 < DrMAD 1.086',
        pass: bestHd < Math.min(m('neumann'), m('fo')) && Math.max(m('neumann'), m('fo')) < m('oneStep') && m('oneStep') < m('drmad'),
      },
      {
        metric: 'mean cosine to exact: HyperDistill > 1-step > FO',
        value: `${round(cos(hdMain), 3)} / ${round(cos('oneStep'), 3)} / ${round(cos('fo'), 3)}`,
        paper: 'HyperDistill > 1-step > FO (Fig. 3)',
        pass: cos(hdMain) > cos('oneStep') && cos('oneStep') > cos('fo'),
      },
      { metric: `time per inner opt., ${byKey[hdMain].label} / 1-step`, value: round(timeRatio, 2), paper: '≤ 1.5 (Table 3: 6.92 s / 6.80 s)', pass: timeRatio <= 1.5 },
    ];
    const cosRows = results.flatMap((r) =>
      cfg.diagnoseAt.map((at) => {
        const pts = r.cosines.filter((c) => c.m === at);
        return { method: r.label, m: at, cosine: mean(pts.map((p) => p.cosine)), cosineSO: mean(pts.map((p) => p.cosineSecondOrder)) };
      }),
    );
    // Validation loss after each inner optimisation, mean over seeds (the paper's Figure 8); spikes are diverged inner loops.
    const convergenceRows = results.flatMap((r) =>
      Array.from({ length: cfg.episodes }, (_, i) => ({ method: r.label, m: i + 1, valLoss: mean(r.records.filter((x) => x.m === i + 1).map((x) => x.valLoss)) })),
    );
    return {
      summary: legacyRows(summary),
      figures: [
        byInnerOptimisation('meta-convergence', 'Meta-training: validation MSE after each inner optimisation',
          `mean over ${cfg.seeds.length} seed(s); log scale, spikes are diverged inner loops`, convergenceRows, 'valLoss', 'validation MSE', true),
        byInnerOptimisation('cosine-to-exact', 'Cosine similarity to the exact unrolled hypergradient along meta-training',
          `ANIL sinusoid, T=${cfg.steps}, mean over ${cfg.seeds.length} seed(s)`, cosRows, 'cosine', 'cosine'),
        byInnerOptimisation('cosine-second-order', 'Cosine of the second-order part to the exact one',
          `ANIL sinusoid, T=${cfg.steps}`, cosRows, 'cosineSO', 'cosine (second-order part)'),
        {
          name: 'meta-test-mse',
          spec: groupedBars({
            title: 'Meta-test MSE (mean ± std over seeds)',
            subtitle: `paper: FO 0.567, 1-step 0.670, DrMAD 1.086, N.IFT 0.502, HyperDistill 0.327`,
            data: results.map((r) => ({ method: r.label, mse: mean(r.mse), lo: mean(r.mse) - std(r.mse), hi: mean(r.mse) + std(r.mse) })),
            category: { field: 'method', title: 'method' },
            group: { field: 'method', title: 'method' },
            value: { field: 'mse', title: 'MSE' },
            errorBar: { lower: 'lo', upper: 'hi' },
          }),
        },
      ],
      json: {
        config: cfg,
        mse: {
          fo: m('fo'), oneStep: m('oneStep'), drmad: m('drmad'), neumann: m('neumann'), hyperdistill: m(hdMain),
          byMethod: mse,
        },
        cosine: {
          fo: cos('fo'), oneStep: cos('oneStep'), drmad: cos('drmad'), neumann: cos('neumann'), hyperdistill: cos(hdMain),
          byMethod: cosine,
        },
        cost: costs,
        costSideBySide: timed,
        worstValLoss: worstVal,
        theta: Object.fromEntries(results.filter((r) => r.key.startsWith('hyperdistill')).map((r) => [r.key, r.theta])),
        records: results.flatMap((r) => r.records),
      },
    };
  },
};
