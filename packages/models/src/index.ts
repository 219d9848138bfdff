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
