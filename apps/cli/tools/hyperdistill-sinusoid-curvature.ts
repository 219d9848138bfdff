/**
 * @file Why E5's long-horizon hypergradients diverge: meta-trains one E5 method and prints, after every inner
 * optimisation, η·λ_max of the heads' training-loss Hessian on a fixed meta-batch (max over its tasks). Heavy-ball
 * SGD is stable only while η·λ_max < 2(1 + μ) = 3.8. Example (the exact online hypergradient, seed 0):
 *   npx tsx apps/cli/tools/hyperdistill-sinusoid-curvature.ts --method rmdOnline --episodes 4
 */
import { Command } from 'commander';
import { tensor, type Device } from '@metagrad/tensor';
import { createNodeDevice } from '@metagrad/tensor/node';
import { deriveSeed, sampleMetaBatch, sinusoidFamily, type MlpParams, type Model } from '@metagrad/models';
import { E5_FULL, e5Methods, makeE5Learner, sinusoidEpisode, type E5Config, type MethodKey } from '@metagrad/experiments/node';

/** λ_max of (2/n)·[F 1]ᵀ[F 1] per task (the MSE Hessian of a linear head), by power iteration on the host. */
function headCurvature(features: Float32Array, tasks: number, n: number, h: number): number {
  let worst = 0;
  for (let b = 0; b < tasks; b++) {
    const rows = Array.from({ length: n }, (_, i) => [...features.subarray((b * n + i) * h, (b * n + i + 1) * h), 1]);
    let v = new Array<number>(h + 1).fill(1);
    let lambda = 0;
    for (let it = 0; it < 100; it++) {
      const av = new Array<number>(h + 1).fill(0);
      for (const r of rows) {
        const d = r.reduce((a, ri, k) => a + ri * v[k], 0);
        r.forEach((ri, k) => (av[k] += (2 / n) * ri * d));
      }
      lambda = Math.hypot(...av);
      if (!(lambda > 0)) return lambda;
      v = av.map((t) => t / lambda);
    }
    worst = Math.max(worst, lambda);
  }
  return worst;
}

async function etaLambdaMax(cfg: E5Config, device: Device, features: Model<MlpParams>, lambda: MlpParams): Promise<number> {
  const mb = sampleMetaBatch(sinusoidFamily, {
    metaBatch: cfg.metaBatch,
    nSupport: cfg.shots,
    nQuery: cfg.shots,
    seed: 4242,
  });
  const x = tensor(mb.support.x, [cfg.metaBatch * cfg.shots, 1], 'f32', device);
  const f = features.apply(lambda, x);
  const host = await f.toArray();
  [f, x].forEach((t) => t.dispose());
  return cfg.innerLr * headCurvature(host as Float32Array, cfg.metaBatch, cfg.shots, cfg.hidden);
}

const o = new Command()
  .option('--method <key>', 'E5 method key (fo, oneStep, hyperdistill0.9, rmdOnline, rmdOnline3, …)', 'rmdOnline')
  .option('--seed <n>', 'seed', '0')
  .option('--episodes <M>', 'inner optimisations', '4')
  .option('--momentum-jacobian <kind>', "LinearEstimation's Jacobians: constant or exact", 'constant')
  .parse()
  .opts<{ method: string; seed: string; episodes: string; momentumJacobian: 'constant' | 'exact' }>();
const seed = Number(o.seed);
const cfg: E5Config = { ...E5_FULL, seeds: [seed], momentumJacobian: o.momentumJacobian };
const spec = e5Methods(cfg).find((m) => m.key === (o.method as MethodKey));
if (!spec)
  throw new Error(
    `unknown method ${o.method}; one of ${e5Methods(cfg)
      .map((m) => m.key)
      .join(', ')}`,
  );
const device = await createNodeDevice();
const learner = makeE5Learner(cfg, device, spec, seed);
try {
  console.log(`m 0  η·λmax ${(await etaLambdaMax(cfg, device, learner.features, learner.lambda)).toFixed(3)}`);
  for (let m = 1; m <= Number(o.episodes); m++) {
    const ep = sinusoidEpisode(cfg, device, deriveSeed(seed, 3, m));
    try {
      const r = await learner.trainer.runEpisode(ep);
      console.log(`m ${m}  validation ${r.valLoss.toPrecision(3)}  η·λmax ${(await etaLambdaMax(cfg, device, learner.features, learner.lambda)).toFixed(3)}`);
    } finally {
      ep.dispose();
    }
  }
} finally {
  learner.dispose();
  device.destroy();
}
