/** @file E5 as a report section: HyperDistill vs FO, 1-step, DrMAD and Neumann IFT on ANIL sinusoid regression (HyperDistill, Appendix G). */
import { seeded, type SectionResult, type SummaryRow } from './section';
import { allPairs, findPair, formatInterval, intervalJson, markAll, markCheck, markDiff, meanInterval, type Interval, type PairDiff } from './intervals';
import { groupedBars, lineChart, type Row } from './plots';
import {
  E5_FULL,
  E5_QUICK,
  e5Methods,
  measureEpisodeCosts,
  runHyperdistillSeed,
  tuneGamma,
  worstValLoss,
  type E5MethodResult,
  type E5SeedMethod,
  type E5Tuning,
  type EpisodeCost,
  type MethodKey,
} from './hyperdistill-sinusoid';

const PAPER_MSE: Record<string, number> = {
  fo: 0.567,
  oneStep: 0.67,
  drmad: 1.086,
  neumann: 0.502,
  hyperdistill: 0.327,
};
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
function cost(r: Pick<E5MethodResult, 'records'>, period: number, T: number) {
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

/** The paper's order of meta-test MSE (Table 4): each claim a − b < 0, with the paper's two values. */
const PAPER_ORDER: [MethodKey | 'hd', MethodKey, string][] = [
  ['hd', 'neumann', '0.327 vs 0.502'],
  ['hd', 'fo', '0.327 vs 0.567'],
  ['neumann', 'oneStep', '0.502 vs 0.670'],
  ['fo', 'oneStep', '0.567 vs 0.670'],
  ['oneStep', 'drmad', '0.670 vs 1.086'],
];

interface E5SeedJson {
  seed: number;
  methods: E5SeedMethod[];
}

/**
 * The HyperDistill γ of the report's rows: the lowest mean meta-validation MSE over seeds when every seed has one for
 * every γ that ran, else the configured `reportGamma` (or the last γ that ran).
 */
function chooseHd(runs: E5SeedJson[], reportGamma: number): { key: string; how: string; valMse: Record<string, number> | null } {
  const keys = runs[0].methods.filter((m) => m.key.startsWith('hyperdistill')).map((m) => m.key as string);
  const val = (k: string) => runs.map((r) => r.methods.find((m) => m.key === k)?.valMse ?? null);
  if (keys.length > 1 && keys.every((k) => val(k).every((v) => typeof v === 'number'))) {
    const valMse = Object.fromEntries(keys.map((k) => [k, mean(val(k) as number[])]));
    const key = keys.reduce((a, b) => (valMse[b] < valMse[a] ? b : a));
    return { key, how: 'chosen on meta-validation', valMse };
  }
  const configured = `hyperdistill${reportGamma}`;
  return {
    key: keys.includes(configured) ? configured : keys[keys.length - 1],
    how: 'configured (no meta-validation)',
    valMse: null,
  };
}

export const hyperdistillSinusoidSection = seeded({
  id: 'hyperdistill-sinusoid',
  title: 'E5: HyperDistill vs FO, 1-step, DrMAD, Neumann IFT on ANIL sinusoid regression',
  paperFigure: 'HyperDistill, Appendix G (Table 4), Fig. 3, Table 3',
  defaultSeeds: (quick) => [...(quick ? E5_QUICK : E5_FULL).seeds],
  async runSeed(ctx, seed) {
    const cfg = ctx.quick ? E5_QUICK : E5_FULL;
    const progress = ctx.progress(e5Methods(cfg).length * cfg.episodes, `seed ${seed} inner optimisations`);
    try {
      return await runHyperdistillSeed(cfg, ctx.device, seed, (label, detail) => progress.increment(1, { metric: `${label} ${detail}` }));
    } finally {
      progress.stop();
    }
  },
  extras: {
    /** The short γ tuning run on meta-validation tasks (full variant only; null in quick). */
    async tune(ctx): Promise<E5Tuning | null> {
      const cfg = ctx.quick ? E5_QUICK : E5_FULL;
      if (!cfg.tune) return null;
      const progress = ctx.progress(cfg.tune.gammas.length * cfg.tune.seeds.length * cfg.tune.episodes, 'γ tuning (meta-validation)');
      try {
        const t = await tuneGamma(cfg, ctx.device, (label, detail) => progress.increment(1, { metric: `${label} ${detail}` }));
        if (t)
          ctx.log(
            `γ tuning: meta-validation MSE ${Object.entries(t.valMse)
              .map(([g, v]) => `γ=${g} ${v.toFixed(3)}`)
              .join(', ')}; chosen γ=${t.chosen}, the seeds use γ=${t.used}`,
          );
        return t;
      } finally {
        progress.stop();
      }
    },
    /** Time per inner optimisation, all methods side by side in one process (the paper's Table 3): not per seed. */
    async cost(ctx): Promise<EpisodeCost[]> {
      const cfg = ctx.quick ? E5_QUICK : E5_FULL;
      const progress = ctx.progress(e5Methods(cfg).length * (cfg.costRepeats + 3), 'side-by-side cost rounds');
      try {
        return await measureEpisodeCosts(cfg, ctx.device, cfg.costRepeats, (label, detail) => progress.increment(1, { metric: `${label} ${detail}` }));
      } finally {
        progress.stop();
      }
    },
  },
  summarise(perSeed, ctx): SectionResult {
    const cfg = ctx.quick ? E5_QUICK : E5_FULL;
    const seeds = perSeed.map((s) => s.seed);
    const runs = perSeed.map((s) => s.json as E5SeedJson);
    const specs = runs[0].methods.map((m) => ({ key: m.key, label: m.label }));
    const of = (key: string) => runs.map((r) => r.methods.find((m) => m.key === key)!);
    // Merged over seeds, in the shape the cost and figure helpers take.
    const results = specs.map((sp) => ({
      key: sp.key,
      label: sp.label,
      mse: of(sp.key).map((m) => m.mse ?? NaN),
      records: of(sp.key).flatMap((m) => m.records),
      cosines: of(sp.key).flatMap((m) => m.cosines),
      theta: of(sp.key).map((m) => m.theta ?? NaN),
    }));
    // Per method: seeds × meta-test tasks (the same tasks for every method), for paired intervals.
    const tasks = Object.fromEntries(specs.map((sp) => [sp.key, of(sp.key).map((m) => m.perTask)]));
    const finite = (k: string) => tasks[k].every((row) => row.every((x) => typeof x === 'number' && Number.isFinite(x)));
    const mseIv: Record<string, Interval | null> = Object.fromEntries(specs.map((sp) => [sp.key, finite(sp.key) ? meanInterval(tasks[sp.key]) : null]));
    // A method that diverged (a NaN task) has no interval and is left out of the pairs.
    const pairs: PairDiff[] = allPairs(Object.fromEntries(specs.filter((sp) => finite(sp.key)).map((sp) => [sp.key, tasks[sp.key]])));
    const hd = chooseHd(runs, cfg.reportGamma);
    const tuning = (ctx.extras.tune as E5Tuning | null | undefined) ?? null;
    if (hd.how.startsWith('configured') && runs[0].methods.filter((m) => m.key.startsWith('hyperdistill')).length === 1) {
      hd.how = tuning ? `γ tuned on meta-validation, ${tuning.seeds.length} seed × ${tuning.episodes} inner opt.` : 'γ from the tuning run (E5_TUNED_GAMMA)';
    }
    const key = (k: string) => (k === 'hd' ? hd.key : k);
    const SHORT: Record<string, string> = { fo: 'FO', oneStep: '1-step', drmad: 'DrMAD', neumann: 'N.IFT' };
    const label = (k: string) => SHORT[key(k)] ?? specs.find((sp) => sp.key === key(k))?.label ?? k;
    const cosBySeed = (k: string) => of(k).map((m) => mean(m.cosines.map((c) => c.cosine ?? NaN)));
    const mse = Object.fromEntries(
      results.map((r) => [
        r.key,
        {
          mean: round(mean(r.mse)),
          std: round(std(r.mse)),
          perSeed: r.mse.map((x) => round(x)),
          ...(mseIv[r.key] ? { ci95: intervalJson(mseIv[r.key]!).ci95 } : {}),
        },
      ]),
    );
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
    const timedList = (ctx.extras.cost as EpisodeCost[] | undefined) ?? null;
    const timed = timedList ? Object.fromEntries(timedList.map((c) => [c.key, c])) : null;
    ctx.log(
      '\n' +
        results
          .map((r) => {
            const c = costs[r.key];
            return `${r.label.padEnd(24)} MSE ${mean(r.mse).toFixed(3)} ± ${std(r.mse).toFixed(3)} (paper ${paperMse(r.key)})  cos ${cosine[r.key].mean.toFixed(3)} / SO ${cosine[r.key].secondOrder.toFixed(3)} (‖SO‖ ×${cosine[r.key].normRatioSecondOrder.toFixed(2)})  JVPs ${c.jvps.toFixed(0)}+${c.fitJvpsPerInnerOpt.toFixed(1)} HVPs ${c.hvps.toFixed(0)}${timed?.[r.key] ? `  ${timed[r.key].ms.toFixed(0)} ms` : ''}  ${c.peakMiB.toFixed(2)} MiB  worst val ${worstVal[r.key].toPrecision(3)}${Number.isFinite(r.theta[0]) ? `  θ ${r.theta.map((t) => t.toFixed(2)).join('/')}` : ''}`;
          })
          .join('\n'),
    );
    const ivText = (k: string) => (mseIv[k] ? formatInterval(mseIv[k]!.mean, mseIv[k]!.ci95) : `${round(mean(of(k).map((m) => m.mse ?? NaN)), 3)} (diverged)`);
    const shown = specs.filter((sp) => !sp.key.startsWith('hyperdistill') || sp.key === hd.key);
    const summary: SummaryRow[] = shown.map((sp) => ({
      metric: `meta-test MSE, ${sp.label}${sp.key === hd.key ? ` (${hd.how})` : ''}`,
      value: ivText(sp.key),
      paper: paperMse(sp.key),
      goal: '–',
      mark: null,
    }));
    for (const [a, b, paper] of PAPER_ORDER) {
      const ka = key(a);
      if (!mseIv[ka] || !mseIv[b]) {
        summary.push({
          metric: `MSE ${label(a)} − ${label(b)}`,
          value: 'diverged (no interval)',
          paper,
          goal: '< 0',
          mark: null,
        });
        continue;
      }
      const pr = findPair(pairs, ka, b);
      const mark = markDiff(pr, '<');
      summary.push({
        metric: `meta-test MSE ${label(a)} − ${label(b)}`,
        value: formatInterval(pr.meanDiff, pr.ci95),
        paper,
        goal: '< 0',
        mark,
      });
    }
    // Which pairs of the paper's five methods our intervals cannot tell apart.
    const five = ['fo', 'oneStep', 'drmad', 'neumann', 'hd'].map(key).filter((k) => mseIv[k]);
    const tied = five.flatMap((a, i) =>
      five
        .slice(i + 1)
        .filter((b) => markDiff(findPair(pairs, a, b), '<') === '≈')
        .map((b) => `${label(a)} ≈ ${label(b)}`),
    );
    summary.push({
      metric: 'MSE pairs of the five not distinguishable',
      value: tied.length ? tied.join(', ') : 'none',
      paper: 'FO ≈ 1-step ≈ N.IFT (its Table 4, p 0.19–0.48)',
      goal: '–',
      mark: null,
    });
    if (tuning) {
      summary.push({
        metric: `HyperDistill γ tuning: meta-validation MSE (${tuning.valTasks} tasks, ${tuning.seeds.length} seed × ${tuning.episodes} inner opt.)`,
        value: `${tuning.gammas.map((g) => `γ=${g} ${Number.isFinite(tuning.valMse[String(g)]) ? tuning.valMse[String(g)].toFixed(3) : 'diverged'}`).join(', ')}; chosen γ=${tuning.chosen}, rows use γ=${tuning.used}`,
        paper: 'γ tuned on meta-validation over {0.9, 0.99, 0.999, 0.9999}',
        goal: 'rows use the chosen γ',
        mark: markCheck(tuning.chosen === tuning.used),
      });
    }
    const cosHd = cosBySeed(hd.key);
    const cosOne = cosBySeed('oneStep');
    const cosFo = cosBySeed('fo');
    const cosFinite = [...cosHd, ...cosOne, ...cosFo].every((x) => Number.isFinite(x));
    const cosPairs = cosFinite ? [pairedDiffOf('HD', cosHd, '1-step', cosOne), pairedDiffOf('1-step', cosOne, 'FO', cosFo)] : [];
    summary.push({
      metric: `mean cosine to exact: ${label('hd')} / 1-step / FO`,
      value: `${round(mean(cosHd), 3)} / ${round(mean(cosOne), 3)} / ${round(mean(cosFo), 3)}${cosPairs.length ? `; differences ${cosPairs.map((p) => formatInterval(p.meanDiff, p.ci95)).join(', ')}` : ''}`,
      paper: 'HyperDistill > 1-step > FO (Fig. 3)',
      goal: 'HD > 1-step > FO',
      mark: cosPairs.length ? markAll(cosPairs.map((p) => markDiff(p, '>'))) : null,
    });
    if (timed?.[hd.key] && timed.oneStep) {
      const timeRatio = timed[hd.key].ms / timed.oneStep.ms;
      summary.push({
        metric: `time per inner opt., ${label('hd')} / 1-step (side by side)`,
        value: round(timeRatio, 2),
        paper: 'Table 3: 6.92 s / 6.80 s',
        goal: '≤ 1.5',
        mark: markCheck(timeRatio <= 1.5),
      });
    } else ctx.log('no side-by-side timing (extra unit "cost" did not run): the time row is left out');
    const cosRows = results.flatMap((r) =>
      cfg.diagnoseAt.map((at) => {
        const pts = r.cosines.filter((c) => c.m === at);
        return {
          method: r.label,
          m: at,
          cosine: mean(pts.map((p) => p.cosine)),
          cosineSO: mean(pts.map((p) => p.cosineSecondOrder)),
        };
      }),
    );
    // Validation loss after each inner optimisation, mean over seeds (the paper's Figure 8); spikes are diverged inner loops.
    const convergenceRows = results.flatMap((r) =>
      Array.from({ length: cfg.episodes }, (_, i) => ({
        method: r.label,
        m: i + 1,
        valLoss: mean(r.records.filter((x) => x.m === i + 1).map((x) => x.valLoss ?? NaN)),
      })),
    );
    const m = (k: string): number => mse[k]?.mean ?? NaN;
    const cos = (k: string): number => cosine[k]?.mean ?? NaN;
    return {
      summary,
      figures: [
        byInnerOptimisation(
          'meta-convergence',
          'Meta-training: validation MSE after each inner optimisation',
          `mean over ${seeds.length} seed(s); log scale, spikes are diverged inner loops`,
          convergenceRows,
          'valLoss',
          'validation MSE',
          true,
        ),
        byInnerOptimisation(
          'cosine-to-exact',
          'Cosine similarity to the exact unrolled hypergradient along meta-training',
          `ANIL sinusoid, T=${cfg.steps}, mean over ${seeds.length} seed(s)`,
          cosRows,
          'cosine',
          'cosine',
        ),
        byInnerOptimisation(
          'cosine-second-order',
          'Cosine of the second-order part to the exact one',
          `ANIL sinusoid, T=${cfg.steps}`,
          cosRows,
          'cosineSO',
          'cosine (second-order part)',
        ),
        {
          name: 'meta-test-mse',
          spec: groupedBars({
            title: `Meta-test MSE (mean over ${seeds.length} seed(s) × ${cfg.testTasks} tasks, 95 % interval)`,
            subtitle: `paper: FO 0.567, 1-step 0.670, DrMAD 1.086, N.IFT 0.502, HyperDistill 0.327`,
            data: results.map((r) => ({
              method: r.label,
              mse: mean(r.mse),
              lo: mseIv[r.key]?.ci95[0] ?? mean(r.mse),
              hi: mseIv[r.key]?.ci95[1] ?? mean(r.mse),
            })),
            category: { field: 'method', title: 'method' },
            group: { field: 'method', title: 'method' },
            value: { field: 'mse', title: 'MSE' },
            errorBar: { lower: 'lo', upper: 'hi' },
          }),
        },
      ],
      json: {
        config: cfg,
        seeds,
        hyperdistill: { key: hd.key, how: hd.how, valMse: hd.valMse },
        gammaTuning: tuning,
        hyperLrDecay: cfg.hyperLrDecay ?? 'constant',
        mse: {
          fo: m('fo'),
          oneStep: m('oneStep'),
          drmad: m('drmad'),
          neumann: m('neumann'),
          hyperdistill: m(hd.key),
          byMethod: mse,
        },
        pairs,
        cosine: {
          fo: cos('fo'),
          oneStep: cos('oneStep'),
          drmad: cos('drmad'),
          neumann: cos('neumann'),
          hyperdistill: cos(hd.key),
          byMethod: cosine,
          pairs: cosPairs,
        },
        cost: costs,
        costSideBySide: timed,
        worstValLoss: worstVal,
        theta: Object.fromEntries(results.filter((r) => r.key.startsWith('hyperdistill')).map((r) => [r.key, r.theta])),
        records: results.flatMap((r) => r.records),
      },
    };
  },
});

/** A paired difference over seeds only (one value per seed). */
function pairedDiffOf(a: string, va: number[], b: string, vb: number[]): PairDiff {
  return allPairs({ [a]: va, [b]: vb })[0];
}
