/**
 * @file EvoGrad toy page: the paper's 1-D bilevel problem (`evogradToyProblem` from @metagrad/experiments, as E1). For a grid of λ, many trials of metagrad's EvoGrad
 * estimator on the device (each from x ~ N(0, 1)) against the closed form (λ−1)/(λ+1)³; every device estimate is
 * also recomputed in float64 on the host from the same noise as a check; then (x, λ) SGD trajectories.
 */
import { evogradToyProblem, type ToyLambda, type ToyTheta } from '@metagrad/experiments';
import { EvoGrad, pearsonCorrelation } from '@metagrad/meta';
import { Rng, TOY_TRAJECTORY_STARTS, toyEvogradHypergradient, toyHypergradient, toyLambdaGrid, toyTrainGradX } from '@metagrad/models';
import { type Device, type Tensor, dispose, tensor } from '@metagrad/tensor';
import { concat } from '@metagrad/tensor/raw';
import { Chart, type Run, demoStatus, finishRun, fmt, paramForm, readParams, runControls, setState, slider, startDevice, writeParams } from './common';

// Ranges as the sliders' (K, τ, σ, λ) and what the run needs (counts ≥ 1, a positive step size).
const SPECS = {
  K: { value: 10, integer: true, min: 1, max: 100 },
  tau: { value: 0.5, positive: true, max: 2 },
  sigma: { value: 1, positive: true, max: 2 },
  lambda: { value: 0.5, positive: true, max: 2 },
  lambdas: { value: 40, integer: true, min: 2, max: 1000 },
  trials: { value: 30, integer: true, min: 1, max: 10_000 },
  steps: { value: 5, integer: true, min: 1, max: 10_000 },
  lr: { value: 0.1, positive: true, max: 10 },
  seed: { value: 1, integer: true, min: 0, max: 2 ** 31 - 1 },
};
const params = readParams(SPECS);

interface Settings {
  K: number;
  tau: number;
  sigma: number;
  lambda: number;
}

/** One EvoGrad estimate at (x, λ) on the device; returns the hypergradient and the noise it drew (both [.., 1]). */
async function estimate(evo: EvoGrad<null>, x: number, lambdaValue: number): Promise<{ hypergrad: Tensor; noise: Tensor }> {
  const theta: ToyTheta = { x: tensor([x]) };
  const lambda: ToyLambda = { lambda: tensor([lambdaValue]) };
  const noise = evo.sampleNoise(theta);
  try {
    const result = await evo.estimateWithNoise({ problem: evogradToyProblem, theta, lambda, trainBatch: null, valBatch: null }, noise);
    return { hypergrad: result.hypergrad.lambda, noise: noise.x };
  } finally {
    dispose([theta.x, lambda.lambda]);
  }
}

interface Row {
  lambda: number;
  mean: number;
  std: number;
  exact: number;
  /** Largest |device − float64 host| over the row's trials. */
  maxAbsError: number;
  maxAbsHost: number;
}

/** `trials` estimates at one λ, read back in one go, with the float64 recomputation from the same noise. */
async function row(evo: EvoGrad<null>, settings: Settings, lambdaValue: number, rng: Rng, trials: number): Promise<Row> {
  const xs = Array.from({ length: trials }, () => rng.normal());
  const hypergrads: Tensor[] = [];
  const noises: Tensor[] = [];
  try {
    for (const x of xs) {
      const { hypergrad, noise } = await estimate(evo, x, lambdaValue);
      hypergrads.push(hypergrad);
      noises.push(noise);
    }
    const stackedH = concat(hypergrads, 0);
    const stackedE = concat(noises, 0);
    const [h, e] = await Promise.all([stackedH.toArray(), stackedE.toArray()]);
    dispose([stackedH, stackedE]);
    let mean = 0;
    let maxAbsError = 0;
    let maxAbsHost = 0;
    for (let t = 0; t < trials; t++) {
      mean += h[t] / trials;
      const host = toyEvogradHypergradient(xs[t], lambdaValue, e.subarray(t * settings.K, (t + 1) * settings.K), settings.tau);
      maxAbsError = Math.max(maxAbsError, Math.abs(h[t] - host));
      maxAbsHost = Math.max(maxAbsHost, Math.abs(host));
    }
    let variance = 0;
    for (let t = 0; t < trials; t++) variance += (h[t] - mean) ** 2 / trials;
    return {
      lambda: lambdaValue,
      mean,
      std: Math.sqrt(variance),
      exact: toyHypergradient(lambdaValue),
      maxAbsError,
      maxAbsHost,
    };
  } finally {
    dispose([...hypergrads, ...noises]);
  }
}

type Path = [number, number][];

/** `steps` SGD steps from (x, λ): x down ∂f_T/∂x, λ down the hypergradient (EvoGrad's, one estimate, or exact). */
async function trajectory(evo: EvoGrad<null> | null, start: readonly [number, number]): Promise<Path> {
  let [x, lambda] = start;
  const path: Path = [[x, lambda]];
  for (let step = 0; step < params.steps; step++) {
    let h: number;
    if (evo) {
      const { hypergrad, noise } = await estimate(evo, x, lambda);
      h = (await hypergrad.toArray())[0];
      dispose([hypergrad, noise]);
    } else {
      h = toyHypergradient(lambda);
    }
    const gx = toyTrainGradX(x, lambda);
    x -= params.lr * gx;
    lambda -= params.lr * h;
    path.push([x, lambda]);
  }
  return path;
}

const PALETTE = ['#2f6fd6', '#d6552f', '#2f9d5a', '#9b3fd6', '#c79a00', '#444'];

function estimateChart(): Chart {
  const grid = toyLambdaGrid(200);
  return new Chart(document.getElementById('estimate-chart') as HTMLCanvasElement, {
    type: 'line',
    data: {
      datasets: [
        {
          label: 'closed form (λ−1)/(λ+1)³',
          data: Array.from(grid, (l) => ({ x: l, y: toyHypergradient(l) })),
          borderColor: '#222',
          borderWidth: 2,
          pointRadius: 0,
        },
        { label: 'mean − std', data: [], borderColor: 'rgba(47,111,214,0.25)', borderWidth: 1, pointRadius: 0 },
        {
          label: 'mean ± std',
          data: [],
          borderColor: 'rgba(47,111,214,0.25)',
          backgroundColor: 'rgba(47,111,214,0.18)',
          borderWidth: 1,
          pointRadius: 0,
          fill: '-1',
        },
        {
          label: 'EvoGrad mean',
          data: [],
          borderColor: PALETTE[0],
          backgroundColor: PALETTE[0],
          borderWidth: 2,
          pointRadius: 2,
        },
        {
          label: 'λ probed',
          data: [],
          borderColor: PALETTE[1],
          backgroundColor: PALETTE[1],
          showLine: false,
          pointRadius: 6,
          pointStyle: 'rectRot',
        },
      ],
    },
    options: {
      maintainAspectRatio: false,
      parsing: false,
      scales: {
        x: { type: 'linear', title: { display: true, text: 'λ' }, min: 0.1, max: 2 },
        y: { type: 'linear', title: { display: true, text: 'dL_V/dλ' } },
      },
      plugins: { legend: { labels: { filter: (item) => item.text !== 'mean − std' } } },
    },
  });
}

/** The inner optimum x*(λ) = 1/(1+λ) as a guide curve in the (x, λ) plane. */
const optimumCurve = (): { x: number; y: number }[] => Array.from(toyLambdaGrid(60, 0.1, 2), (l) => ({ x: 1 / (1 + l), y: l }));

function trajectoryChart(): Chart {
  return new Chart(document.getElementById('trajectory-chart') as HTMLCanvasElement, {
    type: 'scatter',
    data: { datasets: [] },
    options: {
      maintainAspectRatio: false,
      parsing: false,
      scales: {
        x: { type: 'linear', title: { display: true, text: 'x' } },
        y: { type: 'linear', title: { display: true, text: 'λ' } },
      },
      // One legend entry per start (the EvoGrad path); the dashed exact twin shares its colour.
      plugins: { legend: { labels: { filter: (item) => !item.text.startsWith('exact') } } },
    },
  });
}

demoStatus('evograd-toy');
const device: Device | null = await startDevice();
if (device) {
  const estimates = estimateChart();
  const trajectories = trajectoryChart();
  const metrics = document.getElementById('metrics') as HTMLElement;

  // A slider or form change goes into the URL and starts a new run (the current one gives way at its next tick).
  const changed = (): void => {
    writeParams(SPECS, params);
    void controls.restart();
  };
  const sliderChanged = (key: 'K' | 'tau' | 'sigma' | 'lambda') => (): void => {
    params[key] = read[key]();
    changed();
  };
  const read = {
    K: slider('K', params.K, sliderChanged('K')),
    tau: slider('tau', params.tau, sliderChanged('tau'), (v) => v.toFixed(2)),
    sigma: slider('sigma', params.sigma, sliderChanged('sigma'), (v) => v.toFixed(1)),
    lambda: slider('lambda', params.lambda, sliderChanged('lambda'), (v) => v.toFixed(2)),
  };

  const toyRun = async (run: Run): Promise<void> => {
    const settings: Settings = { K: params.K, tau: params.tau, sigma: params.sigma, lambda: params.lambda };
    const t0 = performance.now();
    const liveBefore = device.memory().liveTensors;
    const evo = new EvoGrad<null>({
      K: settings.K,
      sigma: settings.sigma,
      tau: settings.tau,
      noise: 'gaussian',
      seed: params.seed,
    });
    const rng = new Rng(params.seed);
    const grid = toyLambdaGrid(params.lambdas);
    const rows: Row[] = [];
    for (const dataset of estimates.data.datasets.slice(1)) dataset.data = [];
    trajectories.data.datasets = [
      {
        label: 'inner optimum x*(λ)',
        data: optimumCurve(),
        showLine: true,
        borderColor: '#bbb',
        backgroundColor: '#bbb',
        borderWidth: 1.5,
        pointRadius: 0,
      },
    ];
    trajectories.update();
    setState('running', `K=${settings.K} τ=${settings.tau} σ=${settings.sigma}: estimating at ${grid.length} λ × ${params.trials} trials…`);
    for (const lambdaValue of grid) {
      const r = await row(evo, settings, lambdaValue, rng, params.trials);
      rows.push(r);
      const [lower, upper, mean] = estimates.data.datasets.slice(1, 4);
      lower.data.push({ x: r.lambda, y: r.mean - r.std });
      upper.data.push({ x: r.lambda, y: r.mean + r.std });
      mean.data.push({ x: r.lambda, y: r.mean });
      estimates.update();
      setState('running', `estimating: ${rows.length}/${grid.length} λ done (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      await run.tick();
    }
    const probe = await row(evo, settings, settings.lambda, rng, params.trials);
    await run.tick();
    estimates.data.datasets[4].data = [{ x: probe.lambda, y: probe.mean }];
    estimates.update();
    const corr = pearsonCorrelation(
      rows.map((r) => r.mean),
      rows.map((r) => r.exact),
    );
    const meanStd = rows.reduce((s, r) => s + r.std, 0) / rows.length;
    const maxRelErrorVsFloat64 = Math.max(...rows.map((r) => r.maxAbsError)) / Math.max(1e-12, ...rows.map((r) => r.maxAbsHost));

    setState('running', 'trajectories…');
    const starts: (readonly [number, number])[] = [...TOY_TRAJECTORY_STARTS, [0, settings.lambda]];
    const paths: { start: readonly [number, number]; evograd: Path; exact: Path }[] = [];
    for (const [i, start] of starts.entries()) {
      const evograd = await trajectory(evo, start);
      const exact = await trajectory(null, start);
      await run.tick();
      paths.push({ start, evograd, exact });
      const color = PALETTE[i % PALETTE.length];
      const name = `(${start[0]}, ${start[1]})`;
      trajectories.data.datasets.push(
        {
          label: `start ${name}`,
          data: evograd.map(([x, y]) => ({ x, y })),
          showLine: true,
          borderColor: color,
          backgroundColor: color,
          pointRadius: 3,
        },
        {
          label: `exact ${name}`,
          data: exact.map(([x, y]) => ({ x, y })),
          showLine: true,
          borderColor: color,
          backgroundColor: color,
          borderDash: [5, 4],
          pointRadius: 1,
        },
      );
      trajectories.update();
    }
    const ms = performance.now() - t0;
    const liveAfter = device.memory().liveTensors;
    metrics.innerHTML =
      `<span>corr(EvoGrad mean, closed form) = <b>${fmt(corr)}</b></span>` +
      `<span>mean std over trials = <b>${fmt(meanStd, 4)}</b></span>` +
      `<span>at λ=${fmt(settings.lambda, 2)}: EvoGrad <b>${fmt(probe.mean, 4)} ± ${fmt(probe.std, 4)}</b>, exact <b>${fmt(probe.exact, 4)}</b></span>` +
      `<span>device vs float64 host (same noise): max rel. error ${maxRelErrorVsFloat64.toExponential(1)}</span>`;
    finishRun(
      {
        ...settings,
        lambdas: grid.length,
        trials: params.trials,
        corr,
        meanStd,
        maxRelErrorVsFloat64,
        probe: { lambda: probe.lambda, mean: probe.mean, std: probe.std, exact: probe.exact },
        rows: rows.map((r) => ({ lambda: r.lambda, mean: r.mean, std: r.std, exact: r.exact })),
        trajectories: paths,
        leakedTensors: liveAfter - liveBefore,
        ms,
      },
      `done in ${(ms / 1000).toFixed(1)} s: ${grid.length * params.trials + params.trials} EvoGrad estimates on the device (K=${settings.K}), ` +
        `correlation with the closed form ${fmt(corr)}`,
    );
  };
  const controls = runControls(toyRun);
  paramForm(SPECS, params, ['lambdas', 'trials', 'steps', 'lr', 'seed'], changed);
}
