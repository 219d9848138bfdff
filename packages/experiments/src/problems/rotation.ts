/**
 * @file The EvoGrad paper's rotation-learning problem (Table 3, on Fashion-MNIST): θ is a LeNet-5, λ one angle that
 * a RotationTransformer applies to the training images; L_T is the cross-entropy on the rotated training images,
 * L_V on the (already rotated) validation images. Used by experiment E2 and the browser's rotation page.
 * Browser-safe.
 */
import { add, conv2d, crossEntropy, logSoftmax, matmul, mean, mul, neg, permute, relu, reshape, sum } from '@metagrad/autograd';
import type { BilevelProblem, ClassificationBatch } from '@metagrad/meta';
import { lenet5, maxPool2dLayer, rotationTransformer, type LeNet5Params, type Model, type RotationParams } from '@metagrad/models';
import { ShapeError, tidy, type Tensor } from '@metagrad/tensor';
import { oneHot } from '@metagrad/tensor/raw';

function then(prev: Tensor, next: Tensor): Tensor {
  prev.dispose();
  return next;
}

/** LeNet-5 for K stacked parameter copies on shared input x [N, 1, S, S] → logits [K, N, C] (grouped conv2). */
export function batchedLenet(p: LeNet5Params, x: Tensor): Tensor {
  const K = p.conv1.weight.shape[0];
  const w = (t: Tensor) => reshape(t, [t.shape[0] * t.shape[1], ...t.shape.slice(2)]);
  const b4 = (t: Tensor) => reshape(t, [1, t.size, 1, 1]);
  const c = (name: keyof LeNet5Params): { weight: Tensor; bias: Tensor } => {
    const layer = p[name];
    if (!('bias' in layer)) throw new ShapeError(`batchedLenet: layer ${name} has no bias`);
    return layer;
  };
  return tidy(() => {
    let h = conv2d(x, w(c('conv1').weight), { padding: 2 });
    h = then(h, add(h, b4(c('conv1').bias)));
    h = then(h, relu(h));
    h = then(h, maxPool2dLayer(h, 2));
    h = then(h, conv2d(h, w(c('conv2').weight), { groups: K }));
    h = then(h, add(h, b4(c('conv2').bias)));
    h = then(h, relu(h));
    h = then(h, maxPool2dLayer(h, 2));
    const N = x.shape[0];
    h = then(h, permute(reshape(h, [N, K, h.size / (N * K)]), [1, 0, 2]));
    for (const [i, name] of (['fc1', 'fc2', 'fc3'] as const).entries()) {
      h = then(h, matmul(h, c(name).weight, { transB: true }));
      h = then(h, add(h, reshape(c(name).bias, [K, 1, c(name).bias.shape[1]])));
      if (i < 2) h = then(h, relu(h));
    }
    return h;
  });
}

export interface RotationProblem {
  /** LeNet-5 on `imageSize`² greyscale images. */
  net: Model<LeNet5Params>;
  /** λ = { angle } (radians), applied to the training images. */
  rotator: Model<RotationParams>;
  /**
   * L_T on rotated training images, L_V on the validation images as given; `batchedTrainLoss` runs K stacked
   * LeNet copies on the same rotated images (the rotation and its graph to the angle are computed once).
   */
  problem: BilevelProblem<LeNet5Params, RotationParams, ClassificationBatch>;
}

/** The rotation problem for `imageSize`² images (14 in E2: Fashion-MNIST average-pooled once). */
export function createRotationProblem(options: { imageSize: number }): RotationProblem {
  const net = lenet5({ imageSize: options.imageSize });
  const rotator = rotationTransformer();
  const problem: BilevelProblem<LeNet5Params, RotationParams, ClassificationBatch> = {
    // tidy: the logits and rotated images are intermediates (the graph keeps what backward needs).
    trainLoss: (theta, lambda, b) => tidy(() => crossEntropy(net.apply(theta, rotator.apply(lambda, b.x)), b.y)),
    valLoss: (theta, _lambda, b) => tidy(() => crossEntropy(net.apply(theta, b.x), b.y)),
    batchedTrainLoss: (thetas, lambda, b) =>
      tidy(() => {
        const logits = batchedLenet(thetas, rotator.apply(lambda, b.x)); // [K, N, C]
        const targets = oneHot(b.y, logits.shape[2]); // [N, C], broadcast over K
        return mean(neg(sum(mul(logSoftmax(logits, 2), targets), [2])), [1]);
      }),
  };
  return { net, rotator, problem };
}
