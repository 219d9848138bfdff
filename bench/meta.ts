/**
 * @file Meta-step cost bench: time and peak memory per meta-step of the online estimators (Meta-Weight-Net problem,
 * plain vs T1–T2 vs EvoGrad), per inner optimisation of the episodic ones (E5: FO, 1-step, DrMAD, Neumann,
 * HyperDistill, online RMD) and of the initialisation learners (MAML, A-MAML, FOMAML, Reptile, iMAML) at a fixed
 * inner-step count. Reuses the E4/E5/E8 measurement code so the bench and the experiments cannot drift apart.
 */
import type { Device } from '@metagrad/tensor';
import { measureCosts, cnnClassifier, mlpClassifier, runAmamlCost, E5_FULL, E5_QUICK, measureEpisodeCosts } from '@metagrad/experiments/node';

export interface MetaBenchRow {
  /** `online` (one alternating base + meta step), `episodic` (one inner optimisation of E5 with its online
   * hypergradients; peak above the episode's start) or `init` (one task's meta-gradient). */
  kind: 'online' | 'episodic' | 'init';
  model: string;
  method: string;
  ms: number;
  peakBytes: number;
  /** Time and memory relative to the reference method of the group (T1–T2 for online, MAML for init). */
  msRatio: number;
  peakRatio: number;
}

export interface MetaBench {
  adapter: Device['adapter'];
  rows: MetaBenchRow[];
}

function withRatios(rows: Omit<MetaBenchRow, 'msRatio' | 'peakRatio'>[], reference: string): MetaBenchRow[] {
  const ref = rows.find((r) => r.method === reference);
  return rows.map((r) => ({
    ...r,
    msRatio: ref ? r.ms / ref.ms : NaN,
    peakRatio: ref ? r.peakBytes / ref.peakBytes : NaN,
  }));
}

export async function benchMeta(device: Device, opts: { quick: boolean }): Promise<MetaBench> {
  const grid = { cnnWidths: [], mlpWidths: [], batch: 64, warmup: 1, steps: opts.quick ? 2 : 4 };
  const rows: MetaBenchRow[] = [];
  for (const [model, c] of [
    [opts.quick ? 'cnn ×1' : 'cnn ×4', cnnClassifier(opts.quick ? 1 : 4)],
    ['mlp 256', mlpClassifier(256)],
  ] as const) {
    const measured = await measureCosts(c, grid, device);
    rows.push(
      ...withRatios(
        measured.map((m) => ({
          kind: 'online' as const,
          model: `MWN + ${model}`,
          method: m.method,
          ms: m.msPerStep,
          peakBytes: m.peakBytes,
        })),
        't1-t2',
      ),
    );
  }
  // E5's inner optimisation (ANIL on sinusoids, T steps of momentum SGD, meta-batch 10) with each online method.
  const e5 = opts.quick ? E5_QUICK : E5_FULL;
  // The methods are pinned (HyperDistill γ = 0.99, online RMD K = 3) so the rows stay comparable whatever γ the E5
  // full config is tuned to and whether it runs the reference methods; a missing row is an error, not a gap.
  const only = ['fo', 'oneStep', 'drmad', 'neumann', 'hyperdistill0.99', 'rmdOnline3'] as const;
  const episodic = await measureEpisodeCosts({ ...e5, seeds: [0], gammas: [0.99], onlineHorizons: [3], only: [...only] }, device, opts.quick ? 1 : 3);
  if (episodic.length !== only.length) throw new Error(`bench meta: E5 measured ${episodic.map((c) => c.key).join(', ')}; expected ${only.join(', ')}`);
  rows.push(
    ...withRatios(
      episodic.map((c) => ({
        kind: 'episodic' as const,
        model: `E5 ANIL 1-${e5.hidden}×3-1, T=${e5.steps}`,
        method: c.label,
        ms: c.ms,
        peakBytes: c.peakAboveStart,
      })),
      '1-step',
    ),
  );
  const steps = opts.quick ? 20 : 100;
  const init = await runAmamlCost(device, { steps: [steps], repeats: opts.quick ? 1 : 2, innerLr: 0.01, shots: 100 });
  rows.push(
    ...withRatios(
      init.map((r) => ({
        kind: 'init' as const,
        model: `tanh 2-32-32-1, ${steps} inner steps`,
        method: r.method,
        ms: r.ms,
        peakBytes: r.peakBytes,
      })),
      'MAML',
    ),
  );
  return { adapter: device.adapter, rows };
}

export function formatMetaTable(r: MetaBench): string {
  const lines = ['| kind | model | method | ms / step | peak MiB | time ratio | memory ratio |', '|---|---|---|---:|---:|---:|---:|'];
  for (const row of r.rows) {
    lines.push(
      `| ${row.kind} | ${row.model} | ${row.method} | ${row.ms.toFixed(1)} | ${(row.peakBytes / 2 ** 20).toFixed(2)} | ${row.msRatio.toFixed(2)} | ${row.peakRatio.toFixed(2)} |`,
    );
  }
  lines.push('', 'Ratios are against T1–T2 (online rows), 1-step (episodic rows, per inner optimisation) and MAML (init rows), measured in the same run.');
  return lines.join('\n');
}
