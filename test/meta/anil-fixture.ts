/** @file Test fixture: ANIL on sinusoid regression (8 ReLU features, B = 2 tasks) — seeded episodes and an EpisodicTrainer. */
import { tensor, type Device } from '@metagrad/tensor';
import { disposeTree, mlp, Rng, type ParamTree } from '@metagrad/models';
import { EpisodicTrainer, anilProblem, regressionBatchOps, type Episode, type HyperMethod, type RegressionBatch } from '@metagrad/meta';

/** Tasks per batch. */
export const B = 2;
export const features = mlp({ sizes: [1, 8], activation: 'relu', outputActivation: 'relu' });
export const anil = anilProblem({ features: (l, x) => features.apply(l as never, x) });

/**
 * T inner steps on one support set and a query set of B tasks, 5 points each, y = 2 sin(x − 1) with x drawn from
 * `seed`; `poison` (NaN or Infinity) replaces one support target.
 */
export function sinusoidEpisode(device: Device, seed: number, T: number, poison?: number): Episode<RegressionBatch> {
  const rng = new Rng(seed);
  const mk = (n: number, bad: boolean): RegressionBatch => {
    const x = rng.uniformArray(B * n, -5, 5);
    const y = x.map((v) => 2 * Math.sin(v - 1));
    if (bad) y[3] = poison!;
    return { x: tensor(x, [B, n, 1], 'f32', device), y: tensor(y, [B, n, 1], 'f32', device) };
  };
  const support = mk(5, poison !== undefined);
  const query = mk(5, false);
  return {
    trainBatches: Array.from({ length: T }, () => support),
    valBatch: query,
    dispose: () => [support, query].forEach(regressionBatchOps.dispose),
  };
}

/** An EpisodicTrainer for `method` with λ and φ from fixed seeds and heavy-ball SGD (lr 0.01, μ = 0.9) inside. */
export function anilTrainer(
  device: Device,
  method: HyperMethod<RegressionBatch>,
  { hyperLr, reptileLr = 1, logHypergradNorm }: { hyperLr: number; reptileLr?: number; logHypergradNorm?: boolean },
) {
  const lambda = features.init(7, device) as unknown as ParamTree;
  const phi = {
    weight: tensor(new Rng(3).uniformArray(8, -0.3, 0.3), [1, 8, 1], 'f32', device),
    bias: tensor([0], [1, 1, 1], 'f32', device),
  };
  const tr = new EpisodicTrainer<RegressionBatch>({
    problem: anil,
    lambda,
    phi,
    method,
    optimiser: { lr: 0.01, momentum: 0.9 },
    hyperLr,
    reptileLr,
    initialWeights: (p) => anil.initialWeights(p, B),
    reptileTarget: (w) => anil.taskMean(w),
    logHypergradNorm,
  });
  return {
    tr,
    lambda,
    dispose: () => {
      tr.dispose();
      disposeTree([lambda, phi] as ParamTree);
    },
  };
}
