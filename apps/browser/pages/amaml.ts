/**
 * @file Adjoint-MAML page: CosMixture regression (the Adjoint-MAML paper's E7, scaled down). Meta-trains a tanh
 * MLP initialisation with metagrad's AdjointMAML (gradient-flow ODE + adjoint) and, side by side, MAML through a
 * short unrolled loop; then adapts each initialisation (and the untrained one) to unseen tasks by plain GD.
 */
import { noGrad } from '@metagrad/autograd';
import { AdjointMAML, MAML, MetaTrainer, adapt, mseRegressionProblem, type MetaLearner, type MetaProblem, type SupportQueryTask } from '@metagrad/meta';
import {
  type CosMixtureTask,
  type MlpParams,
  type RegressionData,
  type RegressionScaling,
  adam,
  cosMixtureFamily,
  deriveSeed,
  fitRegressionScaling,
  invertScaler,
  applyScaler,
  sampleEpisode,
  sampleTasks,
  scaleRegressionData,
  tanhRegressor,
} from '@metagrad/models';
import { type Device, dispose, tensor } from '@metagrad/tensor';
import { type Chart, type Run, demoStatus, finishRun, fmt, freshChart, paramForm, readParams, runControls, setState, startDevice } from './common';

const count = (value: number, min = 1, max = 100_000) => ({ value, integer: true, min, max });
/**
 * Defaults sized for a software adapter: 15 meta-iterations of 2 tasks finish in under a minute on SwiftShader
 * (measured 49 s on a loaded 2-core machine; 30 × 4 took 157 s) and already show both meta-learned
 * initialisations far ahead of the untrained one (nRMSE ≈ 0.31 A-MAML, 0.40 MAML, 0.96 untrained).
 */
const SPECS = {
  iters: count(15),
  metaBatch: count(2, 1, 1000),
  nTrain: count(100),
  nTest: count(8),
  shots: count(50),
  innerLr: { value: 0.05, positive: true, max: 10 },
  /** Gradient-flow length: T / innerLr tracked states (and the adaptation steps at meta-test). */
  T: { value: 1, positive: true, max: 1000 },
  mamlSteps: count(5),
  outerLr: { value: 1e-2, positive: true, max: 10 },
  seed: count(5, 0, 2 ** 31 - 1),
};
const params = readParams(SPECS);
const SLICE_POINTS = 61;

const model = tanhRegressor({ inputs: 2, hidden: 32, outputs: 1 });
/** Inner loss on the support set, outer loss J on the query set; tidy frees the predictions. */
const problem: MetaProblem<MlpParams, SupportQueryTask> = mseRegressionProblem((p: MlpParams, x) => model.apply(p, x));

interface HostEpisode {
  task: CosMixtureTask;
  support: RegressionData;
  query: RegressionData;
}

function episode(task: CosMixtureTask, seed: number, scaling: RegressionScaling | null): HostEpisode {
  const e = sampleEpisode(cosMixtureFamily, task, { nSupport: params.shots, nQuery: params.shots, seed });
  return scaling ? { task, support: scaleRegressionData(e.support, scaling), query: scaleRegressionData(e.query, scaling) } : { task, ...e };
}

function upload(e: HostEpisode): SupportQueryTask {
  const put = (d: RegressionData) => ({ x: tensor(d.x, [d.n, d.inputDim]), y: tensor(d.y, [d.n, 1]) });
  return { support: put(e.support), query: put(e.query) };
}

const release = (t: SupportQueryTask): void => dispose([t.support.x, t.support.y, t.query.x, t.query.y]);

/** RMSE on the query set in standardised units (y scaled by the training tasks' std: a normalised RMSE). */
async function queryNrmse(p: MlpParams, task: SupportQueryTask): Promise<number> {
  const loss = noGrad(() => problem.outerLoss(p, task));
  const value = (await loss.toArray())[0];
  loss.dispose();
  return Math.sqrt(value);
}

/** Predictions (original units) along x₂ = 0, x₁ ∈ [−1, 1]. */
async function slicePrediction(p: MlpParams, scaling: RegressionScaling): Promise<Float32Array> {
  const x = new Float32Array(SLICE_POINTS * 2);
  for (let i = 0; i < SLICE_POINTS; i++) x[2 * i] = -1 + (2 * i) / (SLICE_POINTS - 1);
  const input = tensor(applyScaler(scaling.x, x), [SLICE_POINTS, 2]);
  const out = noGrad(() => model.apply(p, input));
  const values = (await out.toArray()) as Float32Array;
  dispose([input, out]);
  return invertScaler(scaling.y, values);
}

const sliceX = Array.from({ length: SLICE_POINTS }, (_, i) => -1 + (2 * i) / (SLICE_POINTS - 1));

/** A line chart; `countX` for an x axis that counts (iterations, steps): whole-number ticks only. */
function chart(id: string, xTitle: string, yTitle: string, xMax?: number, countX = false): Chart {
  return freshChart(id, {
    type: 'line',
    data: { datasets: [] },
    options: {
      maintainAspectRatio: false,
      parsing: false,
      scales: {
        x: {
          type: 'linear',
          title: { display: true, text: xTitle },
          ...(xMax !== undefined ? { min: 0, max: xMax } : {}),
          ...(countX ? { ticks: { precision: 0 } } : {}),
        },
        y: { type: 'linear', title: { display: true, text: yTitle } },
      },
    },
  });
}

const COLORS = { amaml: '#2f6fd6', maml: '#d6552f', untrained: '#888' };

/** One whole run with the current `params`: meta-training, then meta-test; `run.tick()` between chunks. */
async function amamlRun(device: Device, run: Run): Promise<void> {
  const t0 = performance.now();
  const adaptSteps = Math.round(params.T / params.innerLr);
  setState('running', 'sampling tasks…');
  const trainTasks = sampleTasks(cosMixtureFamily, params.nTrain, deriveSeed(params.seed, 1));
  const testTasks = sampleTasks(cosMixtureFamily, params.nTest, deriveSeed(params.seed, 2));
  // Standard scaling fitted on the training tasks' data (as the paper), applied to every task.
  const scaling = fitRegressionScaling(
    trainTasks.flatMap((task, i) => {
      const e = episode(task, deriveSeed(params.seed, 3, i), null);
      return [e.support, e.query];
    }),
  );

  const learners: { key: 'amaml' | 'maml'; label: string; learner: MetaLearner }[] = [
    {
      key: 'amaml',
      label: `Adjoint-MAML (T=${params.T}, ${adaptSteps} tracked states)`,
      learner: AdjointMAML({ T: params.T, h: params.innerLr }),
    },
    {
      key: 'maml',
      label: `MAML (${params.mamlSteps} unrolled steps)`,
      learner: MAML({ steps: params.mamlSteps, innerLr: params.innerLr }),
    },
  ];
  const theta0 = model.init(params.seed);
  const trainers = learners.map(({ learner }) => new MetaTrainer(learner, problem, theta0, adam({ lr: params.outerLr })));
  // A reset stops the run at a tick: the trainers and θ₀ are freed whichever way it ends.
  try {
    const trainChart = chart('train-chart', 'outer iteration', 'query MSE (scaled units)', params.iters, true);
    trainChart.data.datasets = learners.map(({ label, key }) => ({
      label,
      data: [],
      borderColor: COLORS[key],
      backgroundColor: COLORS[key],
      borderWidth: 2,
      pointRadius: 0,
    }));
    const losses: Record<'amaml' | 'maml', number[]> = { amaml: [], maml: [] };
    const msPerIter: Record<'amaml' | 'maml', number> = { amaml: 0, maml: 0 };

    for (let it = 0; it < params.iters; it++) {
      const batch = Array.from({ length: params.metaBatch }, (_, b) => {
        const index = (it * params.metaBatch + b) % params.nTrain;
        return episode(trainTasks[index], deriveSeed(params.seed, 4, it, b), scaling);
      });
      for (const [i, { key }] of learners.entries()) {
        const tasks = batch.map(upload);
        const start = performance.now();
        try {
          const { outerLoss } = await trainers[i].step(tasks);
          losses[key].push(outerLoss);
          trainChart.data.datasets[i].data.push({ x: it + 1, y: outerLoss });
        } finally {
          tasks.forEach(release);
        }
        msPerIter[key] += (performance.now() - start) / params.iters;
        await run.tick();
      }
      trainChart.update();
      setState(
        'running',
        `meta-training ${it + 1}/${params.iters}: query MSE A-MAML ${fmt(losses.amaml[it])}, MAML ${fmt(losses.maml[it])} ` +
          `(${((performance.now() - t0) / 1000).toFixed(1)} s)`,
      );
    }

    // Meta-test: adapt each initialisation (and the untrained one) on unseen tasks with plain GD.
    setState('running', `meta-test: adapting on ${params.nTest} unseen tasks for ${adaptSteps} steps…`);
    const evalAt = [...new Set([0, 1, 2, 5, 10, 20, 50, 100, 200, 500].filter((k) => k <= adaptSteps).concat(adaptSteps))].sort((a, b) => a - b);
    const sliceAt = [...new Set([0, Math.round(adaptSteps / 10), Math.round(adaptSteps / 3), adaptSteps])];
    const inits = [
      { key: 'amaml' as const, label: 'Adjoint-MAML init', theta: trainers[0].theta },
      { key: 'maml' as const, label: 'MAML init', theta: trainers[1].theta },
      { key: 'untrained' as const, label: 'untrained init', theta: theta0 },
    ];
    const curves: Record<string, number[]> = {};
    const slices: Record<string, Float32Array[]> = { amaml: [], maml: [] };
    for (const init of inits) {
      const sums = new Array<number>(evalAt.length).fill(0);
      for (let j = 0; j < params.nTest; j++) {
        const task = upload(episode(testTasks[j], deriveSeed(params.seed, 5, j), scaling));
        try {
          const values = await adapt(problem, init.theta, task, {
            steps: adaptSteps,
            innerLr: params.innerLr,
            evalAt: [...new Set([...evalAt, ...(j === 0 ? sliceAt : [])])].sort((a, b) => a - b),
            evaluate: async (p, step) => {
              if (j === 0 && init.key !== 'untrained' && sliceAt.includes(step)) slices[init.key].push(await slicePrediction(p, scaling));
              return queryNrmse(p, task);
            },
          });
          const order = [...new Set([...evalAt, ...(j === 0 ? sliceAt : [])])].sort((a, b) => a - b);
          evalAt.forEach((k, e) => (sums[e] += values[order.indexOf(k)] / params.nTest));
        } finally {
          release(task);
        }
        await run.tick();
      }
      curves[init.key] = sums;
    }

    const adaptChart = chart('adapt-chart', `adaptation steps (GD, lr ${params.innerLr})`, 'query nRMSE', undefined, true);
    adaptChart.data.datasets = inits.map(({ key, label }) => ({
      label,
      data: evalAt.map((k, e) => ({ x: k, y: curves[key][e] })),
      borderColor: COLORS[key],
      backgroundColor: COLORS[key],
      borderDash: key === 'untrained' ? [5, 4] : undefined,
      borderWidth: 2,
      pointRadius: 3,
    }));
    adaptChart.update();

    const truth = cosMixtureFamily.evaluate(
      testTasks[0],
      sliceX.flatMap((x) => [x, 0]),
    );
    for (const key of ['amaml', 'maml'] as const) {
      const c = chart(key === 'amaml' ? 'amaml-slice' : 'maml-slice', 'x₁ (x₂ = 0)', 'f(x)');
      c.data.datasets = [
        {
          label: 'true function',
          data: sliceX.map((x, i) => ({ x, y: truth[i] })),
          borderColor: '#222',
          backgroundColor: '#222',
          borderWidth: 2.5,
          pointRadius: 0,
        },
        ...slices[key].map((values, s) => {
          const alpha = 0.3 + (0.7 * (s + 1)) / slices[key].length;
          const color = key === 'amaml' ? `rgba(47,111,214,${alpha})` : `rgba(214,85,47,${alpha})`;
          return {
            label: `after ${sliceAt[s]} steps`,
            data: sliceX.map((x, i) => ({ x, y: values[i] })),
            borderColor: color,
            backgroundColor: color,
            borderWidth: 2,
            pointRadius: 0,
            borderDash: s === 0 ? [4, 3] : undefined,
          };
        }),
      ];
      c.update();
    }

    const final = (key: string): number => curves[key][curves[key].length - 1];
    const ms = performance.now() - t0;
    (document.getElementById('metrics') as HTMLElement).innerHTML =
      `<span>nRMSE after ${adaptSteps} steps on unseen tasks: A-MAML <b>${fmt(final('amaml'))}</b>, MAML <b>${fmt(final('maml'))}</b>, untrained <b>${fmt(final('untrained'))}</b></span>` +
      `<span>time per outer iteration: A-MAML ${fmt(msPerIter.amaml, 0)} ms, MAML ${fmt(msPerIter.maml, 0)} ms</span>`;
    const result = {
      iters: params.iters,
      metaBatch: params.metaBatch,
      T: params.T,
      adaptSteps,
      mamlSteps: params.mamlSteps,
      trainLoss: losses,
      evalAt,
      curves,
      finalNrmse: { amaml: final('amaml'), maml: final('maml'), untrained: final('untrained') },
      msPerIter,
      ms,
    };
    for (const t of trainers) t.dispose();
    dispose(theta0.flatMap((layer) => Object.values(layer)));
    trainers.length = 0;
    finishRun(
      { ...result, liveTensorsAtEnd: device.memory().liveTensors },
      `done in ${(ms / 1000).toFixed(1)} s: after ${adaptSteps} adaptation steps, query nRMSE A-MAML ${fmt(final('amaml'))}, ` +
        `MAML ${fmt(final('maml'))}, untrained ${fmt(final('untrained'))}`,
    );
  } finally {
    // Emptied on a normal finish (before finishRun counts the live tensors); still full after a reset.
    if (trainers.length > 0) {
      for (const t of trainers) t.dispose();
      dispose(theta0.flatMap((layer) => Object.values(layer)));
    }
  }
}

demoStatus('amaml');
const device: Device | null = await startDevice();
if (device) {
  const controls = runControls((run) => amamlRun(device, run));
  paramForm(SPECS, params, ['iters', 'metaBatch', 'T', 'innerLr', 'mamlSteps', 'outerLr', 'shots', 'nTrain', 'nTest', 'seed'], () => void controls.restart());
}
