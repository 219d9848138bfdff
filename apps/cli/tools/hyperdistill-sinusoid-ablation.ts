/**
 * @file E5 ablations from the command line: any subset of E5's methods with other seeds, γ, hyper learning rate,
 * online-RMD horizons or LinearEstimation's momentum convention, printing per-seed meta-test MSE, the fitted θ and
 * the worst validation loss during meta-training (≫ 10: an inner loop diverged). Example:
 *   pnpm tsx apps/cli/tools/hyperdistill-sinusoid-ablation.ts --methods hyperdistill0.9 --momentum-jacobian exact
 */
import { Command, Option } from 'commander';
import { createNodeDevice } from '@metagrad/tensor/node';
import { E5_FULL, E5_QUICK, runHyperdistillSinusoid, worstValLoss, type E5Config, type MethodKey } from '@metagrad/experiments/node';

const list = (v: string): string[] =>
  v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
const numbers = (v: string): number[] => list(v).map(Number);

const program = new Command()
  .name('hyperdistill-sinusoid-ablation')
  .description('E5 (HyperDistill, Appendix G) with settings changed from the command line')
  .option('--quick', 'start from the quick configuration')
  .option('--methods <keys>', 'E5 method keys: fo,oneStep,drmad,neumann,hyperdistill<γ> (none: "none")', 'fo,oneStep,hyperdistill0.9,hyperdistill0.99')
  .option('--gammas <list>', 'HyperDistill decays', '0.9,0.99')
  .option('--horizons <list>', 'online RMD horizons K, "all" for the whole inner optimisation', '')
  .option('--seeds <list>', 'seeds', '0,1,2')
  .option('--hyper-lr <x>', 'Adam learning rate of λ', '1e-3')
  .option('--steps <T>', "inner steps T (default: the configuration's)")
  .option('--episodes <M>', "inner optimisations M (default: the configuration's)")
  .addOption(new Option('--momentum-jacobian <kind>', "LinearEstimation's Jacobians").choices(['constant', 'exact']).default('constant'))
  .option('--json', 'print one JSON object')
  .parse();

const o = program.opts<{
  quick?: boolean;
  methods: string;
  gammas: string;
  horizons: string;
  seeds: string;
  hyperLr: string;
  steps?: string;
  episodes?: string;
  momentumJacobian: 'constant' | 'exact';
  json?: boolean;
}>();
const base = o.quick ? E5_QUICK : E5_FULL;
const horizons = list(o.horizons).map((h) => (h === 'all' ? ('all' as const) : Number(h)));
const cfg: E5Config = {
  ...base,
  seeds: numbers(o.seeds),
  gammas: numbers(o.gammas),
  hyperLr: Number(o.hyperLr),
  steps: o.steps ? Number(o.steps) : base.steps,
  episodes: o.episodes ? Number(o.episodes) : base.episodes,
  momentumJacobian: o.momentumJacobian,
  onlineHorizons: horizons,
  only: [...list(o.methods), ...horizons.map((h) => `rmdOnline${h === 'all' ? '' : h}`)] as MethodKey[],
  diagnoseAt: [],
};
const device = await createNodeDevice();
try {
  const t0 = performance.now();
  const results = await runHyperdistillSinusoid(cfg, device, (label, detail) => {
    if (!o.json) process.stderr.write(`\r${label} ${detail}      `);
  });
  const rows = results.map((r) => {
    const mean = r.mse.reduce((a, b) => a + b, 0) / r.mse.length;
    const worst = worstValLoss(r.records);
    return {
      key: r.key,
      label: r.label,
      mse: r.mse,
      mseMean: mean,
      theta: r.theta.filter(Number.isFinite),
      worstValLoss: worst,
    };
  });
  if (o.json) console.log(JSON.stringify({ config: cfg, rows, seconds: (performance.now() - t0) / 1000 }));
  else {
    process.stderr.write('\n');
    for (const r of rows) {
      const theta = r.theta.length ? `  θ ${r.theta.map((t) => t.toFixed(2)).join('/')}` : '';
      console.log(
        `${r.label.padEnd(22)} MSE ${r.mseMean.toFixed(3)} (${r.mse.map((x) => x.toFixed(3)).join(', ')})  worst val ${r.worstValLoss.toPrecision(3)}${theta}`,
      );
    }
  }
} finally {
  device.destroy();
}
