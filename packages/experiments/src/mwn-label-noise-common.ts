/**
 * @file The Meta-Weight-Net pieces shared by E3 `mwn-label-noise` and E4 `evograd-cost`: classifiers with a
 * batched forward for EvoGrad's K copies (an MLP via batchedMlp, a width-scaled CNN via grouped convolutions),
 * the MWN bilevel problem, the per-method online iteration (meta step + base step), and batched upload and accuracy
 * (shared with E2).
 */
import { ShapeError, tensor, tidy, type Device, type Tensor } from '@metagrad/tensor';
import { add, conv2d, matmul, noGrad, permute, relu, reshape } from '@metagrad/autograd';
import { argmax, eq } from '@metagrad/tensor/raw';
import {
  Rng,
  conv2dLayer,
  disposeTree,
  flatten,
  initConv2d,
  initLinear,
  linear,
  maxPool2dLayer,
  metaWeightNet,
  mlp,
  type Conv2dParams,
  type LinearParams,
  type MetaWeightNetParams,
  type MlpParams,
  type Model,
  type ParamTree,
} from '@metagrad/models';
import {
  EvoGrad,
  OneStepLookahead,
  batchedMlp,
  metaWeightNetProblem,
  type BilevelProblem,
  type ClassificationBatch,
  type HypergradEstimator,
} from '@metagrad/meta';

export interface Classifier<P extends ParamTree = ParamTree> {
  name: string;
  model: Model<P>;
  /** K stacked parameter copies (leaves [K, …]) → logits [K, N, C]. */
  batched(stacked: P, x: Tensor): Tensor;
  /** Input shape of one example (the data is flattened for the MLP, [1, S, S] for the CNN). */
  inputShape: number[];
}

/** The MLP classifier of E3 (196-h-h-10, ReLU). */
export function mlpClassifier(hidden: number, inputs = 196, classes = 10): Classifier<MlpParams> {
  const sizes = [inputs, hidden, hidden, classes];
  return {
    name: `mlp-${hidden}`,
    model: mlp({ sizes, activation: 'relu' }),
    batched: batchedMlp({ sizes, activation: 'relu' }),
    inputShape: [inputs],
  };
}

type CnnParams = { conv1: Conv2dParams; conv2: Conv2dParams; fc: LinearParams };

/** A layer's weight and bias (the CNN's layers are all built with one). */
function withBias(layer: Conv2dParams | LinearParams): { weight: Tensor; bias: Tensor } {
  if (!('bias' in layer)) throw new ShapeError('cnnClassifier: every layer has a bias');
  return layer;
}

/**
 * conv3×3(8w, pad 1) → ReLU → pool2 → conv3×3(16w, pad 1) → ReLU → pool2 → linear: activation-dominated memory,
 * the regime of the paper's Meta-Weight-Net cost figures. Width multiplier w scales every channel count.
 */
export function cnnClassifier(width: number, size = 14, classes = 10): Classifier<CnnParams> {
  const c1 = 8 * width;
  const c2 = 16 * width;
  const side = Math.floor(Math.floor(size / 2) / 2);
  const features = c2 * side * side;
  const model: Model<CnnParams> = {
    init(seed: number, device?: Device) {
      const rng = new Rng(seed);
      return {
        conv1: initConv2d(rng, 1, c1, 3, { device }),
        conv2: initConv2d(rng, c1, c2, 3, { device }),
        fc: initLinear(rng, features, classes, { device }),
      };
    },
    apply(p: CnnParams, x: Tensor) {
      return tidy(() => {
        let h = maxPool2dLayer(relu(conv2dLayer(p.conv1, x, { padding: 1 })), 2);
        h = maxPool2dLayer(relu(conv2dLayer(p.conv2, h, { padding: 1 })), 2);
        return linear(p.fc, flatten(h));
      });
    },
  };
  // K copies in one pass: conv1's K filter banks stacked as one bank over the shared input, conv2 as a grouped
  // convolution (group k sees only copy k's channels), and the classifier as a batched matmul.
  const batched = (p: CnnParams, x: Tensor): Tensor => {
    const K = p.conv1.weight.shape[0];
    if (p.conv1.weight.rank !== 5) throw new ShapeError('cnnClassifier.batched: expected stacked conv weights [K, out, in, 3, 3]');
    return tidy(() => {
      // Intermediates are freed as soon as the next op has them (a recorded op keeps what its backward needs), so
      // EvoGrad's graph-free copies never hold more than two activations at a time.
      const b = (t: Tensor) => reshape(t, [1, t.size, 1, 1]);
      let h = conv2d(x, reshape(p.conv1.weight, [K * c1, 1, 3, 3]), { padding: 1 });
      h = then(h, add(h, b(withBias(p.conv1).bias)));
      h = then(h, relu(h));
      h = then(h, maxPool2dLayer(h, 2));
      h = then(h, conv2d(h, reshape(p.conv2.weight, [K * c2, c1, 3, 3]), { padding: 1, groups: K }));
      h = then(h, add(h, b(withBias(p.conv2).bias)));
      h = then(h, relu(h));
      h = then(h, maxPool2dLayer(h, 2));
      const N = x.shape[0];
      h = then(h, permute(reshape(h, [N, K, features]), [1, 0, 2])); // [K, N, F]
      const fc = withBias(p.fc);
      h = then(h, matmul(h, fc.weight, { transB: true }));
      return then(h, add(h, reshape(fc.bias, [K, 1, classes])));
    });
  };
  return { name: `cnn-x${width}`, model, batched, inputShape: [1, size, size] };
}

/** Meta-Weight-Net 1-100-1 (ReLU hidden, sigmoid out) as in Shu et al. and E3. */
export const weightNet = metaWeightNet({ hidden: 100 });

/** `normalizeWeights`: L_T = Σ v_i ℓ_i / Σ v_i per batch (the authors' code, T1–T2 and EvoGrad alike) instead of mean(v·ℓ). */
export function mwnProblem<P extends ParamTree>(
  classifier: Classifier<P>,
  options: { normalizeWeights?: boolean } = {},
): BilevelProblem<P, MetaWeightNetParams, ClassificationBatch> {
  return metaWeightNetProblem({
    normalizeWeights: options.normalizeWeights ?? false,
    classifier: (theta: P, x) => classifier.model.apply(theta, x),
    batchedClassifier: (thetas: P, x) => classifier.batched(thetas, x),
    weightNet: (lambda: MetaWeightNetParams, losses) => weightNet.apply(lambda, losses),
  });
}

/** Frees `prev` and returns `next` (for forward chains where only the latest activation is needed). */
function then(prev: Tensor, next: Tensor): Tensor {
  prev.dispose();
  return next;
}

export type MwnMethod = 'baseline' | 't1-t2' | 'evograd-k2' | 'evograd-k4';

/** The estimator a method uses (baseline: none; its λ never moves). EvoGrad: Rademacher σ = 1e-3, τ = 0.05. */
export function estimatorFor(method: MwnMethod, seed: number): HypergradEstimator<ClassificationBatch> | null {
  if (method === 'baseline') return null;
  if (method === 't1-t2') return new OneStepLookahead();
  return new EvoGrad({ K: method === 'evograd-k2' ? 2 : 4, sigma: 1e-3, tau: 0.05, noise: 'rademacher', seed });
}

/** Uploads examples `rows` of a flat host array as a batch shaped [N, ...inputShape]. */
export function uploadBatch(images: Float32Array, labels: Int32Array, rows: ArrayLike<number>, inputShape: number[], device: Device): ClassificationBatch {
  const per = inputShape.reduce((a, b) => a * b, 1);
  const x = new Float32Array(rows.length * per);
  const y = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    x.set(images.subarray(rows[i] * per, (rows[i] + 1) * per), i * per);
    y[i] = labels[rows[i]];
  }
  return { x: tensor(x, [rows.length, ...inputShape], 'f32', device), y: tensor(y, [rows.length], 'i32', device) };
}

export const disposeBatch = (b: ClassificationBatch): void => disposeTree([b.x, b.y]);

/**
 * Test accuracy of `predict` (x → logits, no graph) and, per image, whether its argmax was right (1) or not (0): the
 * per-image results let E2 and E3 pair methods over the test images they share. Batches of 500.
 */
export async function classificationHits(
  predict: (x: Tensor) => Tensor,
  images: Float32Array,
  labels: Int32Array,
  inputShape: number[],
  device: Device,
): Promise<{ acc: number; correct: number[] }> {
  const correct: number[] = [];
  for (let start = 0; start < labels.length; start += 500) {
    const rows = Array.from({ length: Math.min(500, labels.length - start) }, (_, i) => start + i);
    const b = uploadBatch(images, labels, rows, inputShape, device);
    const hits = noGrad(() => tidy(() => eq(argmax(predict(b.x), 1), b.y)));
    for (const v of await hits.toArray()) correct.push(v ? 1 : 0);
    hits.dispose();
    disposeBatch(b);
  }
  return { acc: correct.reduce((a, b) => a + b, 0) / labels.length, correct };
}
