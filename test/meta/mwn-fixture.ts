/** @file Test fixture: the small Meta-Weight-Net problem (5-8-3 ReLU classifier, 6-unit weight net) and its seeded batches. */
import { tensor, type Device, type Tensor } from '@metagrad/tensor';
import { type MetaWeightNetParams, type MlpParams, metaWeightNet, mlp } from '@metagrad/models';
import { batchedMlp, metaWeightNetProblem, type ClassificationBatch } from '@metagrad/meta';

export const SIZES = [5, 8, 3];
export const classifier = mlp({ sizes: SIZES, activation: 'relu' });
export const weightNet = metaWeightNet({ hidden: 6 });
/** With a batched classifier, so EvoGrad takes its one-forward path. */
export const problem = metaWeightNetProblem({
  classifier: (theta: MlpParams, x: Tensor) => classifier.apply(theta, x),
  batchedClassifier: batchedMlp({ sizes: SIZES, activation: 'relu' }),
  weightNet: (lambda: MetaWeightNetParams, losses: Tensor) => weightNet.apply(lambda, losses),
});

/** n examples drawn deterministically from `seed` (inputs in [-1.5, 1.5], labels spread over the classes). */
export function randomBatch(device: Device, n: number, seed: number): ClassificationBatch {
  const x = Float32Array.from({ length: n * SIZES[0] }, (_, i) => Math.sin(seed * 97.3 + i * 12.9898) * 1.5);
  const y = Int32Array.from({ length: n }, (_, i) => Math.abs(Math.floor(Math.sin(seed * 31.1 + i * 78.233) * 1000)) % SIZES[2]);
  return { x: tensor(x, [n, SIZES[0]], 'f32', device), y: tensor(y, [n], 'i32', device) };
}
