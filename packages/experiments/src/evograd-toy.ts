/**
 * @file Experiment E1 `evograd-toy` (EvoGrad, Figs. 2–3): the 1-D problem f_T = (x−1)² + λx², f_V = (x−0.5)²,
 * τ = 0.5, Gaussian ε ~ N(0, 1); as in Algorithm 2 x takes its SGD step (lr 0.1) before λ's hypergradient is
 * estimated at the new x. The 100 λ × 100 trials × K ∈ {2, 10, 100} study uses the float64 closed-form
 * EvoGrad oracle (30 000 estimates: one GPU estimate each would be minutes of dispatch overhead for scalars); the
 * package's GPU `EvoGrad` is checked against that oracle on explicit noise and drives the 5-step trajectories.
 */
import { tensor, type Device, type Tensor } from '@metagrad/tensor';
import { Rng, TOY_TAU, TOY_TRAJECTORY_STARTS, disposeTree, toyEvogradHypergradient, toyHypergradient, toyLambdaGrid, toyTrainGradX } from '@metagrad/models';
import { EvoGrad, pearsonCorrelation } from '@metagrad/meta';
import { evogradToyProblem, type ToyLambda, type ToyTheta } from './problems/evograd-toy';
import { seeded, type Figure, type SectionResult, type SummaryRow } from './section';
import { allPairs, findPair, formatInterval, markAll, markCheck, markDiff, markGoal, markWithin, meanInterval, spread95 } from './intervals';
import { lineChart, sideBySide, type Row } from './plots';

export const TOY_KS = [2, 10, 100] as const;
/** The correlations of the paper's plotted mean curves with the closed form (its notebook's Figure 2 image, issue 18). */
export const PAPER_CORR = { K2: 0.751, K10: 0.982, K100: 0.992 } as const;
const LR = 0.1;
const STEPS = 5;

export interface ToyStudyRow {
  K: number;
  lambda: number;
  mean: number;
  std: number;
  exact: number;
}
export interface ToyResult {
  corr: Record<string, number>;
  std: Record<string, number>;
  rows: ToyStudyRow[];
  /** Max |GPU EvoGrad − float64 oracle| / max(1, |oracle|) over the cross-check draws, per K. */
  gpuVsOracle: Record<string, number>;
  trajectories: { start: number; method: string; step: number; x: number; lambda: number }[];
  /** Mean distance between EvoGrad's and the closed form's final (x, λ), per K. */
  trajectoryGap: Record<string, number>;
  /** corr at K=2 over `seeds` repeats of the whole study: one study's K=2 correlation is itself noisy. */
  corrK2Seeds: { seeds: number; mean: number; std: number; min: number; max: number };
}

/** The correlation study (Fig. 2): mean ± std of the estimate per λ over `trials` random x and noise. */
export function toyStudy(lambdas: number, trials: number, seed = 0): Pick<ToyResult, 'corr' | 'std' | 'rows'> {
  const grid = toyLambdaGrid(lambdas);
  const rows: ToyStudyRow[] = [];
  const corr: Record<string, number> = {};
  const std: Record<string, number> = {};
  for (const K of TOY_KS) {
    const rng = new Rng(seed * 1000 + K);
    const means: number[] = [];
    const exact: number[] = [];
    let stdSum = 0;
    for (const lambda of grid) {
      const est: number[] = [];
      for (let t = 0; t < trials; t++) {
        // Algorithm 2 (and the authors' notebook): one SGD step on x (lr 0.1) first, then the estimate at the new x.
        const x0 = rng.normal();
        const x = x0 - LR * toyTrainGradX(x0, lambda);
        const eps = Array.from({ length: K }, () => rng.normal());
        est.push(toyEvogradHypergradient(x, lambda, eps, TOY_TAU));
      }
      const mean = est.reduce((s, v) => s + v, 0) / trials;
      const sd = Math.sqrt(est.reduce((s, v) => s + (v - mean) ** 2, 0) / trials);
      rows.push({ K, lambda, mean, std: sd, exact: toyHypergradient(lambda) });
      means.push(mean);
      exact.push(toyHypergradient(lambda));
      stdSum += sd;
    }
    corr[`K${K}`] = pearsonCorrelation(means, exact);
    std[`K${K}`] = stdSum / grid.length;
  }
  return { corr, std, rows };
}

const scalar = (v: number, device: Device): Tensor => tensor(Float32Array.of(v), [1], 'f32', device);

/** GPU EvoGrad on explicit noise vs the float64 oracle, `draws` random (x, λ, ε) per K. */
export async function gpuCrossCheck(device: Device, draws: number, seed = 1): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const rng = new Rng(seed);
  for (const K of TOY_KS) {
    const estimator = new EvoGrad<null>({ K, sigma: 1, tau: TOY_TAU, noise: 'gaussian' });
    let worst = 0;
    for (let d = 0; d < draws; d++) {
      const x = rng.normal();
      const lambda = rng.uniform(0.1, 2);
      const eps = Array.from({ length: K }, () => Math.fround(rng.normal()));
      const theta: ToyTheta = { x: scalar(Math.fround(x), device) };
      const lam: ToyLambda = { lambda: scalar(Math.fround(lambda), device) };
      const noise = { x: tensor(Float32Array.from(eps), [K, 1], 'f32', device) };
      const r = await estimator.estimateWithNoise({ problem: evogradToyProblem, theta, lambda: lam, trainBatch: null, valBatch: null }, noise);
      const got = (await r.hypergrad.lambda.toArray())[0];
      const want = toyEvogradHypergradient(Math.fround(x), Math.fround(lambda), eps, TOY_TAU);
      worst = Math.max(worst, Math.abs(got - want) / Math.max(1, Math.abs(want)));
      disposeTree([theta, lam, noise, r.hypergrad]);
    }
    out[`K${K}`] = worst;
  }
  return out;
}

/** Fig. 3: 5 simultaneous SGD steps (lr 0.1) on x (∂f_T/∂x) and λ (EvoGrad on the GPU, or the closed form). */
export async function toyTrajectories(device: Device, seed = 2): Promise<Pick<ToyResult, 'trajectories' | 'trajectoryGap'>> {
  const trajectories: ToyResult['trajectories'] = [];
  const finals = new Map<string, [number, number]>();
  for (const [s, [x0, l0]] of TOY_TRAJECTORY_STARTS.entries()) {
    for (const method of ['closed form', ...TOY_KS.map((K) => `EvoGrad K=${K}`)]) {
      const K = method === 'closed form' ? 0 : Number(method.split('=')[1]);
      const estimator = K ? new EvoGrad<null>({ K, sigma: 1, tau: TOY_TAU, noise: 'gaussian', seed: seed * 100 + s }) : null;
      let x = x0;
      let lambda = l0;
      trajectories.push({ start: s + 1, method, step: 0, x, lambda });
      for (let step = 1; step <= STEPS; step++) {
        // Algorithm 2: x takes its SGD step first; λ's hypergradient is estimated at the updated x.
        x -= LR * toyTrainGradX(x, lambda);
        let g: number;
        if (estimator) {
          const theta: ToyTheta = { x: scalar(x, device) };
          const lam: ToyLambda = { lambda: scalar(lambda, device) };
          const r = await estimator.estimate({
            problem: evogradToyProblem,
            theta,
            lambda: lam,
            trainBatch: null,
            valBatch: null,
          });
          g = (await r.hypergrad.lambda.toArray())[0];
          disposeTree([theta, lam, r.hypergrad]);
        } else g = toyHypergradient(lambda);
        lambda -= LR * g;
        trajectories.push({ start: s + 1, method, step, x, lambda });
      }
      finals.set(`${s}:${method}`, [x, lambda]);
    }
  }
  const trajectoryGap: Record<string, number> = {};
  for (const K of TOY_KS) {
    let gap = 0;
    TOY_TRAJECTORY_STARTS.forEach((_, s) => {
      const [xe, le] = finals.get(`${s}:EvoGrad K=${K}`)!;
      const [xc, lc] = finals.get(`${s}:closed form`)!;
      gap += Math.hypot(xe - xc, le - lc) / TOY_TRAJECTORY_STARTS.length;
    });
    trajectoryGap[`K${K}`] = gap;
  }
  return { trajectories, trajectoryGap };
}

export async function runEvogradToy(device: Device, quick: boolean): Promise<ToyResult> {
  // The study is float64 host work (well under a second), so the quick variant keeps the paper's sizes.
  const study = toyStudy(100, 100);
  const seeds = quick ? 5 : 20;
  const k2 = Array.from({ length: seeds }, (_, i) => (i === 0 ? study.corr.K2 : toyStudy(100, 100, i).corr.K2));
  const mean = k2.reduce((a, b) => a + b, 0) / seeds;
  const corrK2Seeds = {
    seeds,
    mean,
    std: Math.sqrt(k2.reduce((a, b) => a + (b - mean) ** 2, 0) / seeds),
    min: Math.min(...k2),
    max: Math.max(...k2),
  };
  const gpuVsOracle = await gpuCrossCheck(device, quick ? 4 : 20);
  return { ...study, corrK2Seeds, gpuVsOracle, ...(await toyTrajectories(device)) };
}

/** E1's seeds: each is one whole 100 λ × 100 trials study (quick keeps the paper's sizes: it is float64 host work). */
export const E1_SEEDS = { quick: 5, full: 20 } as const;

/** One seed of E1: the whole study, as plain JSON. */
export interface ToySeedJson {
  corr: Record<string, number>;
  std: Record<string, number>;
  rows: ToyStudyRow[];
}

/** E1's non-seeded unit: the GPU EvoGrad against the oracle, and the Fig. 3 trajectories. */
export interface ToyGpuJson {
  gpuVsOracle: Record<string, number>;
  trajectories: ToyResult['trajectories'];
  trajectoryGap: Record<string, number>;
}

/** A line chart whose points are joined in step order rather than sorted along x (trajectories turn back). */
function pathChart(data: Row[], title: string): ReturnType<typeof lineChart> {
  // One colour per method; the five starts are separate lines of it (not ten colours for five pairs).
  return lineChart({
    title,
    data,
    x: { field: 'lambda', title: 'λ' },
    y: { field: 'x', title: 'x' },
    series: { field: 'method', title: 'method' },
    detail: { field: 'start', title: 'start' },
    order: 'step',
  });
}

export const evogradToySection = seeded({
  id: 'evograd-toy',
  title: 'E1: EvoGrad on the 1-D toy problem vs the closed-form hypergradient',
  paperFigure: 'EvoGrad, Figs. 2–3',
  defaultSeeds: (quick) => Array.from({ length: quick ? E1_SEEDS.quick : E1_SEEDS.full }, (_, i) => i),
  async runSeed(_ctx, seed): Promise<ToySeedJson> {
    const { corr, std, rows } = toyStudy(100, 100, seed);
    return { corr, std, rows };
  },
  extras: {
    async gpu(ctx): Promise<ToyGpuJson> {
      const progress = ctx.progress(2, 'GPU cross-check + trajectories');
      try {
        const gpuVsOracle = await gpuCrossCheck(ctx.device, ctx.quick ? 4 : 20);
        progress.increment(1);
        const t = await toyTrajectories(ctx.device);
        progress.increment(1);
        return { gpuVsOracle, ...t };
      } finally {
        progress.stop();
      }
    },
  },
  summarise(perSeed, ctx): SectionResult {
    const seeds = perSeed.map((s) => s.seed);
    const runs = perSeed.map((s) => s.json as ToySeedJson);
    const corrOf = (K: number) => runs.map((r) => r.corr[`K${K}`]);
    const stdOf = (K: number) => runs.map((r) => r.std[`K${K}`]);
    const corr = Object.fromEntries(TOY_KS.map((K) => [`K${K}`, meanInterval(corrOf(K))]));
    const std = Object.fromEntries(TOY_KS.map((K) => [`K${K}`, meanInterval(stdOf(K))]));
    const k2 = corrOf(2);
    const k2Spread = spread95(k2);
    const mean = k2.reduce((a, b) => a + b, 0) / k2.length;
    const corrK2Seeds = {
      seeds: k2.length,
      mean,
      std: Math.sqrt(k2.reduce((a, b) => a + (b - mean) ** 2, 0) / k2.length),
      min: Math.min(...k2),
      max: Math.max(...k2),
      spread95: k2Spread,
    };
    const pairs = [
      ...allPairs(Object.fromEntries(TOY_KS.map((K) => [`corr K=${K}`, corrOf(K)]))),
      ...allPairs(Object.fromEntries(TOY_KS.map((K) => [`std K=${K}`, stdOf(K)]))),
    ];
    const pair = (a: string, b: string) => findPair(pairs, a, b);
    const stdFalls = [markDiff(pair('std K=2', 'std K=10'), '>'), markDiff(pair('std K=10', 'std K=100'), '>')];
    const gpu = ctx.extras.gpu as ToyGpuJson | undefined;
    const f = (x: { mean: number; ci95: [number, number] }) => formatInterval(x.mean, x.ci95);
    const summary: SummaryRow[] = [
      {
        metric: `corr(mean EvoGrad, closed form), K=2, ${k2.length} seeds: mean [95 % CI]; seeds' 95 % range`,
        value: `${f(corr.K2)}; ${k2Spread[0].toFixed(3)}–${k2Spread[1].toFixed(3)}`,
        paper: `${PAPER_CORR.K2} (Fig. 2, plotted K=2 curve)`,
        goal: `seeds' 95 % range covers ${PAPER_CORR.K2}`,
        mark: markWithin(PAPER_CORR.K2, k2Spread),
      },
      {
        metric: 'corr(mean EvoGrad, closed form), K=10',
        value: f(corr.K10),
        paper: `${PAPER_CORR.K10} (Fig. 2 as plotted)`,
        goal: '≥ 0.98',
        mark: markGoal(corr.K10, '>=', 0.98),
      },
      {
        metric: 'corr K=100 − corr K=10',
        value: f({ mean: pair('corr K=100', 'corr K=10').meanDiff, ci95: pair('corr K=100', 'corr K=10').ci95 }),
        paper: `${PAPER_CORR.K100} vs ${PAPER_CORR.K10}`,
        goal: '> 0 (closer with K)',
        mark: markDiff(pair('corr K=100', 'corr K=10'), '>'),
      },
      {
        metric: 'mean std of the estimate K=2 / 10 / 100',
        value: `${std.K2.mean.toFixed(3)} / ${std.K10.mean.toFixed(3)} / ${std.K100.mean.toFixed(3)}`,
        paper: 'falls with K (Fig. 2)',
        goal: 'K=2 > K=10 > K=100',
        mark: markAll(stdFalls),
      },
    ];
    if (gpu) {
      const worst = Math.max(...Object.values(gpu.gpuVsOracle));
      summary.push(
        {
          metric: 'GPU EvoGrad vs float64 oracle (max rel. diff)',
          value: worst,
          paper: '–',
          goal: '< 1e-3 (f32)',
          mark: markCheck(worst < 1e-3),
        },
        {
          metric: 'final (x, λ) gap to closed-form trajectory, K=2 / 10 / 100',
          value: TOY_KS.map((K) => gpu.trajectoryGap[`K${K}`].toFixed(3)).join(' / '),
          paper: 'similar paths, closer with K (Fig. 3)',
          goal: '–',
          mark: null,
        },
      );
    } else ctx.log('no GPU cross-check or trajectories (extra unit "gpu" did not run): their rows and figures are left out');
    // The Fig. 2 panels show the first seed's study.
    const first = runs[0];
    const studyRows: Row[] = first.rows.flatMap((r) => [
      {
        K: r.K,
        lambda: r.lambda,
        value: r.mean,
        lower: r.mean - r.std,
        upper: r.mean + r.std,
        series: 'EvoGrad, mean ± std',
      },
      { K: r.K, lambda: r.lambda, value: r.exact, lower: r.exact, upper: r.exact, series: 'closed form' },
    ]);
    const perK = TOY_KS.map((K) =>
      lineChart({
        title: `K = ${K}`,
        data: studyRows.filter((r) => r.K === K),
        x: { field: 'lambda', title: 'λ' },
        y: { field: 'value', title: '∂f_V/∂λ' },
        series: { field: 'series', title: 'estimate' },
        band: { lower: 'lower', upper: 'upper' },
        points: false,
        width: 260,
        height: 200,
      }),
    );
    const figures: Figure[] = [
      {
        name: 'hypergrad-vs-lambda',
        spec: sideBySide(`EvoGrad estimate vs closed form over λ (100 trials per λ, τ = 0.5; seed ${seeds[0]})`, perK),
      },
    ];
    if (gpu) {
      const pathRows: Row[] = gpu.trajectories.map((t) => ({ ...t, path: `${t.start}: ${t.method}` }));
      figures.push(
        ...TOY_KS.map((K) => ({
          name: `trajectories-k${K}`,
          spec: pathChart(
            pathRows.filter((r) => r.method === 'closed form' || r.method === `EvoGrad K=${K}`),
            `5 SGD steps (lr 0.1) from 5 starts: EvoGrad K=${K} vs closed form`,
          ),
        })),
      );
    }
    // Kept from the single-process JSON: corr and std of the first seed's study (the one plotted).
    return {
      summary,
      figures,
      json: {
        corr: first.corr,
        std: first.std,
        corrK2Seeds,
        corrMean: corr,
        stdMean: std,
        pairs,
        seeds,
        gpuVsOracle: gpu?.gpuVsOracle ?? null,
        trajectoryGap: gpu?.trajectoryGap ?? null,
        rows: first.rows,
        trajectories: gpu?.trajectories ?? null,
      },
    };
  },
});
