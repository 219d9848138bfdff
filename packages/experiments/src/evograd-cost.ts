/**
 * @file Experiment E4 `evograd-cost` (EvoGrad, Figs. 5 and 7): peak memory and time of one online Meta-Weight-Net
 * iteration (meta step + base step) for plain training, T1–T2 and EvoGrad K = 2, 4, as the classifier widens:
 * a CNN ×1…×8 (activation-dominated, where the paper's saving lives) and an MLP 64…1024 (parameter-dominated).
 * Peak `bytesInUse` is reset at every step and measured with one method alive at a time; time is the mean over
 * steps after warm-up (synced by loss readbacks), the methods stepped round-robin so machine load hits all alike.
 * Inputs are random 14×14 images (cost does not depend on the pixels).
 */
import { tensor, type Device } from '@metagrad/tensor';
import { Adam, Rng, SGD, countParams, disposeTree } from '@metagrad/models';
import { OnlineTrainer, type ClassificationBatch, type OnlineStepLog } from '@metagrad/meta';
import type { ReportSection, SectionResult } from './section';
import { lineChart, sideBySide, type Row } from './plots';
import { formatInterval, markCheck, markGoal, meanInterval, type Interval } from './intervals';
import { cnnClassifier, disposeBatch, estimatorFor, mlpClassifier, mwnProblem, weightNet, type Classifier } from './mwn-label-noise-common';

export type CostMethod = 'plain' | 't1-t2' | 'evograd-k2' | 'evograd-k4';
export const COST_METHODS: readonly CostMethod[] = ['plain', 't1-t2', 'evograd-k2', 'evograd-k4'];

export interface CostRow {
  model: 'cnn' | 'mlp';
  width: number;
  method: CostMethod;
  peakBytes: number;
  msPerStep: number;
  /** ms of each interleaved round (msPerStep is their mean). */
  msSamples?: number[];
  params: number;
}

export interface CostGrid {
  cnnWidths: number[];
  mlpWidths: number[];
  batch: number;
  warmup: number;
  /** Interleaved timing rounds per width (each method steps once per round, in a rotating order). */
  steps: number;
}
/** Issue 18: ≥ 5 interleaved repeats at width ×8; 8 rounds give the ×8 time ratio a 95 % interval over rounds. */
export const E4_FULL: CostGrid = {
  cnnWidths: [1, 2, 4, 8],
  mlpWidths: [64, 128, 256, 512, 1024],
  batch: 100,
  warmup: 2,
  steps: 8,
};
export const E4_QUICK: CostGrid = { cnnWidths: [1, 4], mlpWidths: [64, 512], batch: 64, warmup: 1, steps: 2 };

function randomBatch(c: Classifier, n: number, seed: number, device: Device): ClassificationBatch {
  const rng = new Rng(seed);
  const per = c.inputShape.reduce((a, b) => a * b, 1);
  return {
    x: tensor(rng.uniformArray(n * per), [n, ...c.inputShape], 'f32', device),
    y: tensor(
      Int32Array.from({ length: n }, () => rng.int(10)),
      [n],
      'i32',
      device,
    ),
  };
}

interface Cell {
  step(): Promise<OnlineStepLog>;
  params: number;
  dispose(): void;
}

/** One (classifier, method) online loop on fixed random batches, ready to step. */
function makeCell(c: Classifier, method: CostMethod, grid: CostGrid, device: Device): Cell {
  const theta = c.model.init(1, device);
  const lambda = weightNet.init(2, device);
  const train = randomBatch(c, grid.batch, 3, device);
  const val = randomBatch(c, grid.batch, 4, device);
  const problem = mwnProblem(c);
  const thetaOptimizer = new SGD(theta, { lr: 0.1, momentum: 0.9 });
  const lambdaOptimizer = new Adam(lambda, { lr: 1e-3 });
  const estimator = method === 'plain' ? null : estimatorFor(method, 5);
  // Plain training is the same online loop without a meta step (estimator null), so every method pays the same
  // logging overhead.
  const trainer = new OnlineTrainer({
    problem,
    estimator,
    theta,
    lambda,
    thetaOptimizer,
    lambdaOptimizer,
    order: 'meta-first',
    innerLr: 0.1,
    device,
  });
  return {
    step: () => trainer.trainStep(train, val),
    params: countParams(theta),
    dispose: () => {
      thetaOptimizer.dispose();
      lambdaOptimizer.dispose();
      disposeTree([theta, lambda]);
      disposeBatch(train);
      disposeBatch(val);
    },
  };
}

/**
 * The methods of one classifier. Memory: each method alone (nothing else allocated), peak of a step after
 * `warmup`. Time: all methods alive at once and stepped round-robin, so the load of a shared machine drifts over
 * all of them alike and the ratios stay meaningful.
 */
export async function measureCosts(
  c: Classifier,
  grid: CostGrid,
  device: Device,
): Promise<{ method: CostMethod; peakBytes: number; msPerStep: number; msSamples: number[]; params: number }[]> {
  const peaks = new Map<CostMethod, number>();
  for (const method of COST_METHODS) {
    const cell = makeCell(c, method, grid, device);
    try {
      for (let i = 0; i < grid.warmup; i++) await cell.step();
      peaks.set(method, (await cell.step()).peakBytes);
    } finally {
      cell.dispose();
    }
  }
  const cells = COST_METHODS.map((m) => makeCell(c, m, grid, device));
  const samples = COST_METHODS.map(() => [] as number[]);
  try {
    for (const cell of cells) await cell.step();
    for (let s = 0; s < grid.steps; s++) {
      for (let j = 0; j < cells.length; j++) {
        const i = (j + s) % cells.length; // rotate the order so no method always runs first
        samples[i].push((await cells[i].step()).ms);
      }
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    return COST_METHODS.map((method, i) => ({
      method,
      peakBytes: peaks.get(method)!,
      msPerStep: mean(samples[i]),
      msSamples: samples[i],
      params: cells[i].params,
    }));
  } finally {
    cells.forEach((cell) => cell.dispose());
  }
}

export async function runEvogradCost(device: Device, grid: CostGrid, onCell?: (row: CostRow) => void): Promise<{ rows: CostRow[] }> {
  const rows: CostRow[] = [];
  const families: [CostRow['model'], number[], (w: number) => Classifier][] = [
    ['cnn', grid.cnnWidths, (w) => cnnClassifier(w)],
    ['mlp', grid.mlpWidths, (w) => mlpClassifier(w)],
  ];
  for (const [model, widths, make] of families) {
    for (const width of widths) {
      const c = make(width);
      for (const m of await measureCosts(c, grid, device)) {
        const row = { model, width, ...m };
        rows.push(row);
        onCell?.(row);
      }
    }
  }
  return { rows };
}

const ratio = (rows: CostRow[], model: string, width: number, field: 'peakBytes' | 'msPerStep', a: CostMethod, b: CostMethod): number => {
  const get = (m: CostMethod) => rows.find((r) => r.model === model && r.width === width && r.method === m)?.[field] ?? NaN;
  return get(a) / get(b);
};

export const evogradCostSection: ReportSection = {
  id: 'evograd-cost',
  title: 'E4: memory and time of T1–T2 vs EvoGrad on Meta-Weight-Net as the model widens',
  paperFigure: 'EvoGrad, Figs. 5 and 7 (Meta-Weight-Net scaling)',
  async run(ctx): Promise<SectionResult> {
    const grid = ctx.quick ? E4_QUICK : E4_FULL;
    const progress = ctx.progress((grid.cnnWidths.length + grid.mlpWidths.length) * COST_METHODS.length, 'model × method');
    let rows: CostRow[];
    try {
      ({ rows } = await runEvogradCost(ctx.device, grid, (r) =>
        progress.increment(1, {
          metric: `${r.model}-${r.width} ${r.method} ${(r.peakBytes / 2 ** 20).toFixed(1)} MiB ${r.msPerStep.toFixed(0)} ms`,
        }),
      ));
    } finally {
      progress.stop();
    }
    const maxCnn = grid.cnnWidths[grid.cnnWidths.length - 1];
    const minCnn = grid.cnnWidths[0];
    const memLarge = ratio(rows, 'cnn', maxCnn, 'peakBytes', 'evograd-k2', 't1-t2');
    const timeLarge = ratio(rows, 'cnn', maxCnn, 'msPerStep', 'evograd-k2', 't1-t2');
    const memSmall = ratio(rows, 'cnn', minCnn, 'peakBytes', 'evograd-k2', 't1-t2');
    const timeSmall = ratio(rows, 'cnn', minCnn, 'msPerStep', 'evograd-k2', 't1-t2');
    const maxMlp = grid.mlpWidths[grid.mlpWidths.length - 1];
    const mlpMem = ratio(rows, 'mlp', maxMlp, 'peakBytes', 'evograd-k2', 't1-t2');
    const mlpTime = ratio(rows, 'mlp', maxMlp, 'msPerStep', 'evograd-k2', 't1-t2');
    const k4vsk2 = ratio(rows, 'cnn', maxCnn, 'msPerStep', 'evograd-k4', 'evograd-k2');
    // The ×max time ratio per interleaved round (both methods timed in the same round), with a 95 % interval over rounds.
    const samplesOf = (m: CostMethod) => rows.find((r) => r.model === 'cnn' && r.width === maxCnn && r.method === m)?.msSamples ?? [];
    const evoRounds = samplesOf('evograd-k2');
    const t12Rounds = samplesOf('t1-t2');
    const roundRatios = evoRounds.map((v, i) => v / t12Rounds[i]).filter((x) => Number.isFinite(x));
    const timeIv: Interval | null = roundRatios.length >= 2 ? meanInterval(roundRatios) : null;
    // EvoGrad K=2 and K=4 are one method (one colour) in two variants (two dashes).
    const plotRows: Row[] = rows.map(({ msSamples: _s, ...r }) => ({
      ...r,
      peakMiB: r.peakBytes / 2 ** 20,
      family: r.method.startsWith('evograd-k') ? 'EvoGrad' : r.method,
      copies: r.method.startsWith('evograd-k') ? `K=${r.method.slice('evograd-k'.length)}` : '',
    }));
    const chart = (model: 'cnn' | 'mlp', y: 'peakMiB' | 'msPerStep', title: string) =>
      lineChart({
        title,
        data: plotRows.filter((r) => r.model === model),
        x: { field: 'width', title: model === 'cnn' ? 'CNN width multiplier' : 'MLP hidden width' },
        y: { field: y, title: y === 'peakMiB' ? 'peak memory (MiB)' : 'ms per online step' },
        series: { field: 'family', title: 'method' },
        variant: { field: 'copies', title: 'EvoGrad copies' },
        logX: true,
        logY: true,
        width: 300,
        height: 220,
      });
    return {
      summary: [
        {
          metric: `CNN ×${maxCnn}: EvoGrad K=2 / T1–T2 peak memory`,
          value: memLarge,
          paper: 'over half saved (Fig. 5)',
          goal: '≤ 0.5',
          mark: markCheck(memLarge <= 0.5),
        },
        timeIv
          ? {
              metric: `CNN ×${maxCnn}: EvoGrad K=2 / T1–T2 time per step (mean of ${roundRatios.length} interleaved rounds' ratios [95 % CI]; ratio of means ${timeLarge.toFixed(3)})`,
              value: formatInterval(timeIv.mean, timeIv.ci95),
              paper: 'about a third faster (Fig. 7)',
              goal: '≤ 0.67',
              mark: markGoal(timeIv, '<=', 0.67),
            }
          : {
              metric: `CNN ×${maxCnn}: EvoGrad K=2 / T1–T2 time per step`,
              value: timeLarge,
              paper: 'about a third faster (Fig. 7)',
              goal: '≤ 0.67',
              mark: markCheck(timeLarge <= 0.67),
            },
        {
          metric: `CNN memory ratio ×${minCnn} → ×${maxCnn}`,
          value: `${memSmall.toFixed(2)} → ${memLarge.toFixed(2)}`,
          paper: 'margin grows with width',
          goal: 'falls',
          mark: markCheck(memLarge <= memSmall),
        },
        {
          metric: `CNN time ratio ×${minCnn} → ×${maxCnn}`,
          value: `${timeSmall.toFixed(2)} → ${timeLarge.toFixed(2)}`,
          paper: 'margin grows with width',
          goal: 'falls',
          mark: markCheck(timeLarge <= timeSmall),
        },
        {
          metric: `MLP ${maxMlp}: EvoGrad K=2 / T1–T2 memory, time`,
          value: `${mlpMem.toFixed(2)}, ${mlpTime.toFixed(2)}`,
          paper: 'smaller gap (parameter-dominated)',
          goal: '–',
          mark: null,
        },
        {
          metric: `CNN ×${maxCnn}: EvoGrad K=4 / K=2 time`,
          value: k4vsk2,
          paper: 'slightly slower with more copies (Fig. 9)',
          goal: '–',
          mark: null,
        },
      ],
      figures: [
        {
          name: 'cnn',
          spec: sideBySide('Meta-Weight-Net with a CNN classifier: one online step', [
            chart('cnn', 'peakMiB', 'Peak memory'),
            chart('cnn', 'msPerStep', 'Time'),
          ]),
        },
        {
          name: 'mlp',
          spec: sideBySide('Meta-Weight-Net with an MLP classifier: one online step', [
            chart('mlp', 'peakMiB', 'Peak memory'),
            chart('mlp', 'msPerStep', 'Time'),
          ]),
        },
      ],
      json: { rows, grid, timeRatioRounds: roundRatios, timeRatioInterval: timeIv },
    };
  },
};
