/** @file Test fixture: the PyTorch Meta-Weight-Net hypergradient golden case (test/fixtures/hypergrad.json, gen_hypergrad.py) as a typed HypergradInput. */
import { tensor, type Device, type Tensor } from '@metagrad/tensor';
import { type MetaWeightNetParams, type MlpParams, metaWeightNet, mlp, tree } from '@metagrad/models';
import { batchedMlp, metaWeightNetProblem, type ClassificationBatch, type HypergradInput } from '@metagrad/meta';
import { type FixtureTensor, readFixture, upload } from './fixture-json';

/** One estimator's case: its settings, the hypergradient (leaf by leaf over λ) and L_V where it evaluated it. */
export interface HypergradCase {
  hypergrad: FixtureTensor[];
  valLoss: number;
  K?: number;
  sigma?: number;
  tau?: number;
  /** EvoGrad's perturbations, θ's leaves each stacked K times along a new leading dimension. */
  noise?: FixtureTensor[];
  steps?: number;
  truncate?: number;
  momentum?: number;
}

export interface HypergradFixture {
  sizes: number[];
  hidden: number;
  innerLr: number;
  /** θ's leaves: weight and bias of the classifier's two layers. */
  theta: FixtureTensor[];
  /** λ's leaves: fc1 and fc2 weight and bias of the weight net. */
  lambda: FixtureTensor[];
  trainBatches: { x: FixtureTensor; y: number[] }[];
  valBatch: { x: FixtureTensor; y: number[] };
  cases: Record<string, HypergradCase>;
}

export type MwnInput = HypergradInput<MlpParams, MetaWeightNetParams, ClassificationBatch>;

export const hypergradFixture = readFixture<HypergradFixture>('hypergrad.json');
const fx = hypergradFixture;
const mwnClassifier = mlp({ sizes: fx.sizes, activation: 'tanh' });
const mwnWeightNet = metaWeightNet({ hidden: fx.hidden });
/** With a batched classifier, so EvoGrad takes its one-forward path. */
export const mwnProblem = metaWeightNetProblem({
  classifier: (theta: MlpParams, x) => mwnClassifier.apply(theta, x),
  batchedClassifier: batchedMlp({ sizes: fx.sizes, activation: 'tanh' }),
  weightNet: (lambda: MetaWeightNetParams, losses) => mwnWeightNet.apply(lambda, losses),
});

/** The classifier's θ from its four leaves (weight, bias per layer). */
const thetaOf = (l: Tensor[]): MlpParams => [
  { weight: l[0], bias: l[1] },
  { weight: l[2], bias: l[3] },
];

/**
 * The fixture's θ, λ, training batches and validation batch on `device`, as one HypergradInput (trainBatch is the
 * first training batch); `noiseOf(name)` uploads a case's EvoGrad perturbations (the caller's to dispose);
 * `dispose` frees the input's tensors.
 */
export function mwnHypergradSetup(device: Device): { input: MwnInput; noiseOf: (name: string) => MlpParams; dispose: () => void } {
  const theta = thetaOf(fx.theta.map((a) => upload(a, device)));
  const lm = fx.lambda.map((a) => upload(a, device));
  const lambda: MetaWeightNetParams = { fc1: { weight: lm[0], bias: lm[1] }, fc2: { weight: lm[2], bias: lm[3] } };
  const batch = (b: { x: FixtureTensor; y: number[] }): ClassificationBatch => ({
    x: upload(b.x, device),
    y: tensor(Int32Array.from(b.y), [b.y.length], 'i32', device),
  });
  const trainBatches = fx.trainBatches.map(batch);
  const valBatch = batch(fx.valBatch);
  const input: MwnInput = {
    problem: mwnProblem,
    theta,
    lambda,
    trainBatch: trainBatches[0],
    valBatch,
    innerLr: fx.innerLr,
    trainBatches,
  };
  const noiseOf = (name: string): MlpParams => thetaOf(fx.cases[name].noise!.map((a) => upload(a, device)));
  const dispose = (): void => tree.dispose([theta, lambda, ...[...trainBatches, valBatch].map((b) => ({ x: b.x, y: b.y }))]);
  return { input, noiseOf, dispose };
}
