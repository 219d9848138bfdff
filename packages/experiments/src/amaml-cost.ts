/** @file E8 `amaml-cost`: peak memory and time of one meta-gradient vs inner steps for MAML, A-MAML, FOMAML, Reptile, iMAML (Adjoint-MAML, Figs. 3–4). */
import type { Device, Tensor } from '@metagrad/tensor';
import { compile } from '@metagrad/autograd';
import { type MlpParams, cosMixtureFamily, disposeTree, fromLeaves, leaves } from '@metagrad/models';
import type { ReportSection, SectionResult } from './section';
import { lineChart, sideBySide } from './plots';
import { markCheck } from './intervals';
import { type DeviceTask, type MethodName, disposeTask, fitScaling, hostEpisodes, makeLearner, regressionProblem, regressor, uploadTask } from './amaml-common';

export interface AmamlCostRow {
  method: MethodName;
  steps: number;
  /** Peak bytesInUse during the meta-gradient above what was in use before it (θ and the task's data excluded). */
  peakBytes: number;
  /** Wall time of one meta-gradient (the fastest of `repeats`), with compiled steps where the method has them (timedMetaGradient). */
  ms: number;
}

/**
 * One meta-gradient as the issue-18 time goal compares them, "with compiled steps": MAML, FOMAML and Reptile replay
 * their readback-free core (`metaGradientTensors`, as MetaTrainer does) after three warm-up calls (one eager, two
 * traced); A-MAML decides its forward steps on the host, so it runs `metaGradient` with its backward sweep compiled;
 * iMAML reads back inside its CG and runs `metaGradient` op by op.
 */
export async function timedMetaGradient(
  method: MethodName,
  steps: number,
  innerLr: number,
  theta: MlpParams,
  task: DeviceTask,
): Promise<{ call(): Promise<void>; dispose(): void }> {
  const learner = makeLearner(method, steps, innerLr);
  const core = learner.metaGradientTensors;
  if (!core) return { call: async () => disposeTree((await learner.metaGradient(regressionProblem, theta, task)).gradient), dispose() {} };
  const replay = compile((...ls: Tensor[]) => {
    const r = core(regressionProblem, fromLeaves(theta, ls), task);
    return { gradient: leaves(r.gradient), outerLoss: r.outerLoss };
  });
  const call = async () => {
    const r = await replay(...leaves(theta));
    await r.outerLoss.item(); // metaGradient's one readback
    disposeTree([...r.gradient, r.outerLoss]);
  };
  for (let i = 0; i < 3; i++) await call();
  return { call, dispose: () => replay.dispose() };
}

export interface AmamlCostConfig {
  steps: number[];
  repeats: number;
  innerLr: number;
  shots: number;
}

export const E8_FULL: AmamlCostConfig = { steps: [10, 20, 50, 100, 200, 400], repeats: 2, innerLr: 0.01, shots: 100 };
export const E8_QUICK: AmamlCostConfig = { steps: [10, 20, 50, 100], repeats: 1, innerLr: 0.01, shots: 100 };
export const E8_METHODS: readonly MethodName[] = ['MAML', 'A-MAML', 'FOMAML', 'Reptile', 'iMAML'];

/** One CosMixture task with 100 shots (support and query), the paper's 100shot-100val cost setting. */
export async function runAmamlCost(device: Device, cfg: AmamlCostConfig, onRow?: (r: AmamlCostRow) => void): Promise<AmamlCostRow[]> {
  const episodes = hostEpisodes(cosMixtureFamily, 1, cfg.shots, cfg.shots, 8);
  const task = uploadTask(episodes[0], fitScaling(episodes), device);
  const theta = regressor.init(0, device);
  const rows: AmamlCostRow[] = [];
  try {
    // Warm-up: compile every kernel the methods use so the first timed row does not pay for it.
    for (const m of E8_METHODS) disposeTree((await makeLearner(m, 2, cfg.innerLr).metaGradient(regressionProblem, theta, task)).gradient);
    for (const steps of cfg.steps) {
      for (const method of E8_METHODS) {
        // Peak memory of the plain metaGradient (a compiled plan's arena is the same graph's buffers, held for replays).
        let peak = 0;
        for (let r = 0; r < cfg.repeats; r++) {
          await device.sync();
          const before = device.memory().bytesInUse;
          device.resetPeak();
          const result = await makeLearner(method, steps, cfg.innerLr).metaGradient(regressionProblem, theta, task);
          await device.sync();
          peak = Math.max(peak, device.memory().peakBytesInUse - before);
          disposeTree(result.gradient);
        }
        const timed = await timedMetaGradient(method, steps, cfg.innerLr, theta, task);
        let best = Infinity;
        try {
          for (let r = 0; r < cfg.repeats; r++) {
            await device.sync();
            const t0 = performance.now();
            await timed.call();
            await device.sync();
            best = Math.min(best, performance.now() - t0);
          }
        } finally {
          timed.dispose();
        }
        const row = { method, steps, peakBytes: peak, ms: best };
        rows.push(row);
        onRow?.(row);
      }
    }
  } finally {
    disposeTree(theta);
    disposeTask(task);
  }
  return rows;
}

export const amamlCostSection: ReportSection = {
  id: 'amaml-cost',
  title: 'E8: memory and time per meta-gradient vs inner steps',
  paperFigure: 'Adjoint-MAML, Figs. 3–4',
  async run(ctx): Promise<SectionResult> {
    const cfg = ctx.quick ? E8_QUICK : E8_FULL;
    const progress = ctx.progress(cfg.steps.length * E8_METHODS.length, 'steps × method');
    let rows: AmamlCostRow[];
    try {
      rows = await runAmamlCost(ctx.device, cfg, (r) =>
        progress.increment(1, {
          metric: `${r.method} n=${r.steps} ${(r.peakBytes / 2 ** 20).toFixed(2)} MiB ${r.ms.toFixed(0)} ms`,
        }),
      );
    } finally {
      progress.stop();
    }
    const top = cfg.steps[cfg.steps.length - 1];
    const at = (m: MethodName) => rows.find((r) => r.method === m && r.steps === top)!;
    const memRatio = at('A-MAML').peakBytes / at('MAML').peakBytes;
    const timeRatio = at('A-MAML').ms / at('MAML').ms;
    const fomamlRatio = at('A-MAML').ms / at('FOMAML').ms;
    ctx.log(
      `\n${['method    steps   peak MiB      ms', ...rows.map((r) => `${r.method.padEnd(9)} ${String(r.steps).padStart(5)} ${(r.peakBytes / 2 ** 20).toFixed(3).padStart(10)} ${r.ms.toFixed(0).padStart(7)}`)].join('\n')}`,
    );
    const judged = top === 400;
    const data = rows.map((r) => ({ ...r, peakMiB: r.peakBytes / 2 ** 20 }));
    return {
      summary: [
        {
          metric: `A-MAML / MAML peak memory at ${top} steps`,
          value: memRatio,
          paper: 'MAML exhausts 24 GB by 200 steps (Fig. 3)',
          goal: '≤ 0.1 at 400 steps',
          mark: judged ? markCheck(memRatio <= 0.1) : null,
        },
        {
          metric: `A-MAML / MAML time at ${top} steps`,
          value: timeRatio,
          paper: 'much smaller than MAML (Fig. 4)',
          goal: '≤ 0.5 at 400 steps',
          mark: judged ? markCheck(timeRatio <= 0.5) : null,
        },
        {
          metric: `A-MAML / FOMAML time at ${top} steps`,
          value: fomamlRatio,
          paper: 'comparable to FOMAML (Fig. 4)',
          goal: '≤ 1.5 at 400 steps',
          mark: judged ? markCheck(fomamlRatio <= 1.5) : null,
        },
        {
          metric: `MAML peak memory growth ${cfg.steps[0]}→${top} steps`,
          value: at('MAML').peakBytes / rows.find((r) => r.method === 'MAML' && r.steps === cfg.steps[0])!.peakBytes,
          paper: 'grows with steps (graph)',
          goal: '–',
          mark: null,
        },
      ],
      figures: [
        {
          name: 'memory-and-time',
          spec: sideBySide('Cost of one meta-gradient vs inner steps (CosMixture, 100 shots)', [
            lineChart({
              title: 'Peak memory',
              data,
              x: { field: 'steps', title: 'inner steps' },
              y: { field: 'peakMiB', title: 'peak MiB above baseline' },
              series: { field: 'method', title: 'method' },
              logX: true,
              logY: true,
              points: true,
            }),
            lineChart({
              title: 'Time per meta-gradient',
              data,
              x: { field: 'steps', title: 'inner steps' },
              y: { field: 'ms', title: 'ms' },
              series: { field: 'method', title: 'method' },
              logX: true,
              logY: true,
              points: true,
            }),
          ]),
        },
      ],
      json: { rows },
    };
  },
};
