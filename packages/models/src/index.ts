/** @file Public entry of @metagrad/models (browser-safe; file-system helpers live in ./node). */

// Data: host-side datasets, transforms, batching and task generators (plain typed arrays; callers upload).
export { CorruptDatasetError, DatasetNotFoundError, FASHION_MNIST_PACKAGE } from './data/errors';
export { type IdxArray, type IdxData, type IdxDtype, encodeIdx, parseIdx } from './data/idx';
export {
  type FromIdxOptions,
  type ImageDataset,
  balancedIndices,
  imageDatasetFromIdx,
  labelHistogram,
  selectExamples,
} from './data/image-dataset';
export {
  FASHION_MNIST_MEAN,
  FASHION_MNIST_STD,
  type LabelNoiseOptions,
  corruptLabels,
  downsample2x,
  meanStd,
  normalise,
  rotate,
  rotationTheta,
} from './data/transforms';
export { Rng, deriveSeed } from './data/random';
export { type BatchIteratorOptions, batchIterator, batchesPerEpoch, takeRows } from './data/batches';
export {
  TOY_LAMBDA_RANGE,
  TOY_TAU,
  TOY_TRAJECTORY_STARTS,
  toyEvogradHypergradient,
  toyHypergradient,
  toyLambdaGrid,
  toyOptimalX,
  toyTrainGradX,
  toyTrainLoss,
  toyValGrad,
  toyValLoss,
} from './data/evograd-toy';
export {
  type AlpineTask,
  type BatchedRegressionData,
  type CosMixtureTask,
  type RegressionData,
  type SinusoidTask,
  type TaskFamily,
  alpineFamily,
  cosMixtureFamily,
  sampleEpisode,
  sampleMetaBatch,
  sampleTasks,
  sinusoidFamily,
  stackRegressionData,
} from './data/tasks';
export {
  type RegressionScaling,
  type StandardScaler,
  applyScaler,
  fitRegressionScaling,
  fitStandardScaler,
  invertScaler,
  scaleRegressionData,
} from './data/scaling';

// Checkpoints.
export {
  type SafetensorsContents,
  type SafetensorsData,
  type SafetensorsDtype,
  type SafetensorsEntry,
  SafetensorsError,
  decodeSafetensors,
  encodeSafetensors,
} from './checkpoint';

// Parameter trees.
export * from './params';

// Models: functional layers and networks over parameter trees (init(seed) → params; apply(params, x, ctx)).
export type { ApplyContext, Model, StatefulModel } from './models/model';
export { type SeedLike, constantParam, defaultBound, toRng, uniformParam } from './layers/init';
export { type LinearOptions, type LinearParams, initLinear, linear } from './layers/linear';
export {
  type Conv2dInitOptions,
  type Conv2dLayerOptions,
  type Conv2dParams,
  conv2dLayer,
  initConv2d,
} from './layers/conv';
export { type ActivationName, activation, softplus } from './layers/activations';
export { type PoolOptions, avgPool2dLayer, flatten, globalAvgPool, maxPool2dLayer } from './layers/pool';
export {
  type BatchNormOptions,
  type BatchNormParams,
  type BatchNormState,
  batchNorm2d,
  disposeBatchNormState,
  initBatchNorm,
  initBatchNormState,
} from './layers/batchnorm';
export { dropout } from './layers/dropout';
export { type MlpOptions, type MlpParams, mlp } from './models/mlp';
export { type TanhRegressorOptions, tanhRegressor } from './models/tanh-regressor';
export { type MetaWeightNetOptions, type MetaWeightNetParams, metaWeightNet } from './models/meta-weight-net';
export { type LeNet5Options, type LeNet5Params, lenet5 } from './models/lenet5';
export {
  type RotationParams,
  type RotationTransformerOptions,
  rotationMatrix,
  rotationTransformer,
} from './models/rotation-transformer';
export { type Conv4Block, type Conv4Options, type Conv4Params, conv4 } from './models/conv4';
export { type ResNetBlock, type ResNetCifarOptions, type ResNetParams, resnetCifar } from './models/resnet-cifar';
export {
  type FeatureWiseParams,
  type FeatureWiseTransformOptions,
  featureWiseAffine,
  featureWiseTransform,
} from './models/feature-wise-transform';

// Losses.
export {
  type Reduction,
  accuracy,
  crossEntropy,
  crossEntropyMean,
  crossEntropyPerExample,
  mse,
  mseMean,
  nll,
  softCrossEntropy,
  weightedMean,
} from './losses';

// Optimisers and LR schedules.
export * from './optim';
