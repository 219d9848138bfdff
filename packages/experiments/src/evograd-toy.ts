/**
 * @file Experiment E1 `evograd-toy` (EvoGrad, Figs. 2–3): the 1-D problem f_T = (x−1)² + λx², f_V = (x−0.5)²,
 * τ = 0.5, Gaussian ε ~ N(0, 1). The 100 λ × 100 trials × K ∈ {2, 10, 100} study uses the float64 closed-form
 * EvoGrad oracle (30 000 estimates: one GPU estimate each would be minutes of dispatch overhead for scalars); the
 * package's GPU `EvoGrad` is checked against that oracle on explicit noise and drives the 5-step trajectories.
 */
import { tensor, type Device, type Tensor } from '@metagrad/tensor';
import {
  Rng, TOY_TAU, TOY_TRAJECTORY_STARTS, disposeTree, toyEvogradHypergradient, toyHypergradient, toyLambdaGrid, toyTrainGradX,
} from '@metagrad/models';
import { EvoGrad, pearsonCorrelation } from '@metagrad/meta';
import { evogradToyProblem, type ToyLambda, type ToyTheta } from './problems/evograd-toy';
import type { ReportSection, SectionResult } from './section';
import { lineChart, sideBySide, type Row } from './plots';

export const TOY_KS = [2, 10, 100] as const;
const LR = 0.1;
const STEPS = 5;

export interface ToyStudyRow { K: number; lambda: number; mean: number; std: number; exact: number }
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
        const x = rng.normal();
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
        let g: number;
        if (estimator) {
          const theta: ToyTheta = { x: scalar(x, device) };
          const lam: ToyLambda = { lambda: scalar(lambda, device) };
          const r = await estimator.estimate({ problem: evogradToyProblem, theta, lambda: lam, trainBatch: null, valBatch: null });
          g = (await r.hypergrad.lambda.toArray())[0];
          disposeTree([theta, lam, r.hypergrad]);
        } else g = toyHypergradient(lambda);
        const gx = toyTrainGradX(x, lambda);
        x -= LR * gx;
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
  const corrK2Seeds = { seeds, mean, std: Math.sqrt(k2.reduce((a, b) => a + (b - mean) ** 2, 0) / seeds), min: Math.min(...k2), max: Math.max(...k2) };
  const gpuVsOracle = await gpuCrossCheck(device, quick ? 4 : 20);
  return { ...study, corrK2Seeds, gpuVsOracle, ...(await toyTrajectories(device)) };
}

/** A line chart whose points are joined in step order rather than sorted along x (trajectories turn back). */
function pathChart(data: Row[], title: string): ReturnType<typeof lineChart> {
  const spec = lineChart({ title, data, x: { field: 'lambda', title: 'λ' }, y: { field: 'x', title: 'x' }, series: { field: 'path', title: 'start, method' } });
  const layer = (spec as { layer: { encoding: Record<string, unknown> }[] }).layer;
  layer[layer.length - 1].encoding.order = { field: 'step', type: 'quantitative' };
  return spec;
}

export const evogradToySection: ReportSection = {
  id: 'evograd-toy',
  title: 'E1: EvoGrad on the 1-D toy problem vs the closed-form hypergradient',
  paperFigure: 'EvoGrad, Figs. 2–3',
  async run(ctx): Promise<SectionResult> {
    const progress = ctx.progress(1, 'study + trajectories');
    let result: ToyResult;
    try {
      result = await runEvogradToy(ctx.device, ctx.quick);
      progress.increment(1, { metric: `corr K2 ${result.corr.K2.toFixed(3)}` });
    } finally {
      progress.stop();
    }
    const { corr, std } = result;
    const stdFalls = std.K2 > std.K10 && std.K10 > std.K100;
    const gpuOk = Math.max(...Object.values(result.gpuVsOracle)) < 1e-3;
    const studyRows: Row[] = result.rows.flatMap((r) => [
      { K: r.K, lambda: r.lambda, value: r.mean, lower: r.mean - r.std, upper: r.mean + r.std, series: 'EvoGrad, mean ± std' },
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
    const pathRows: Row[] = result.trajectories.map((t) => ({ ...t, path: `${t.start}: ${t.method}` }));
    return {
      summary: [
        { metric: 'corr(mean EvoGrad, closed form), K=2', value: corr.K2, paper: '≥ 0.8 (Fig. 2: same trend)', pass: corr.K2 >= 0.8 },
        { metric: `corr at K=2 over ${result.corrK2Seeds.seeds} seeds (mean ± std, min–max)`, value: `${result.corrK2Seeds.mean.toFixed(3)} ± ${result.corrK2Seeds.std.toFixed(3)} (${result.corrK2Seeds.min.toFixed(2)}–${result.corrK2Seeds.max.toFixed(2)})`, paper: '≥ 0.8', pass: result.corrK2Seeds.mean >= 0.8 },
        { metric: 'corr(mean EvoGrad, closed form), K=10', value: corr.K10, paper: '≥ 0.98', pass: corr.K10 >= 0.98 },
        { metric: 'corr(mean EvoGrad, closed form), K=100', value: corr.K100, paper: '(closer still)', pass: corr.K100 >= corr.K10 - 0.01 },
        { metric: 'mean std of the estimate K=2 / 10 / 100', value: `${std.K2.toFixed(3)} / ${std.K10.toFixed(3)} / ${std.K100.toFixed(3)}`, paper: 'falls with K', pass: stdFalls },
        { metric: 'GPU EvoGrad vs float64 oracle (max rel. diff)', value: Math.max(...Object.values(result.gpuVsOracle)), paper: '< 1e-3 (f32)', pass: gpuOk },
        { metric: 'final (x, λ) gap to closed-form trajectory, K=2 / 10 / 100', value: TOY_KS.map((K) => result.trajectoryGap[`K${K}`].toFixed(3)).join(' / '), paper: 'similar paths, closer with K (Fig. 3)', pass: null },
      ],
      figures: [
        { name: 'hypergrad-vs-lambda', spec: sideBySide('EvoGrad estimate vs closed form over λ (100 trials per λ, τ = 0.5)', perK) },
        ...TOY_KS.map((K) => ({
          name: `trajectories-k${K}`,
          spec: pathChart(pathRows.filter((r) => r.method === 'closed form' || r.method === `EvoGrad K=${K}`), `5 SGD steps (lr 0.1) from 5 starts: EvoGrad K=${K} vs closed form`),
        })),
      ],
      json: { corr, std, corrK2Seeds: result.corrK2Seeds, gpuVsOracle: result.gpuVsOracle, trajectoryGap: result.trajectoryGap, rows: result.rows, trajectories: result.trajectories },
    };
  },
};
