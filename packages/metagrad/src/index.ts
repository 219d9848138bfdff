/**
 * @file `metagrad`: the user API in one import, as @tensorflow/tfjs gathers tfjs-core and friends. Everything here
 * records gradients where it can: the ops are @metagrad/autograd's differentiable ones (the raw, non-recording ops
 * stay in `@metagrad/tensor/raw`). The Node device helper is `metagrad/node`.
 *
 * Layers, re-exported whole unless listed:
 * - @metagrad/tensor (a curated list: devices, Tensor, scopes, errors, creation and random functions, fusion and
 *   matmul-tuning settings; its kernel-writer helpers and capture internals stay in that package);
 * - @metagrad/autograd: differentiable ops, grad / valueAndGrad / backward / vjp / jvp / hvp / jacobian, customVjp,
 *   gradcheck, compile;
 * - @metagrad/models: layers, models, parameter trees, losses, optimisers and schedules, datasets, checkpoints;
 * - @metagrad/meta: hypergradient estimators and trainers, meta-learners, HyperDistill, odeint and adjoints.
 *
 * Name clashes, resolved here on purpose (test/packaging/umbrella.test.ts keeps the list honest):
 * - `cosine`: @metagrad/models' cosine learning-rate schedule wins; @metagrad/meta's `cosine` is its alias of
 *   `cosineSimilarity`, which is exported under that name.
 * - `crossEntropy`, `mse`, `softCrossEntropy`, `Reduction`: @metagrad/models re-exports @metagrad/autograd's, the
 *   same bindings, so there is no choice to make.
 * - The 73 raw ops that share a name with a differentiable op (`add`, `matmul`, `sum` …) are not exported: the
 *   names here are always the differentiable ones.
 */

// @metagrad/tensor: devices, tensors, scopes, errors, creation, randomness, settings.
export {
  Device,
  Tensor,
  Generator,
  // errors
  DTypeError,
  DeviceLostError,
  DeviceMismatchError,
  DisposedTensorError,
  InPlaceModificationError,
  IndexOutOfRangeError,
  InvalidArgumentError,
  KernelError,
  NoAdapterError,
  OutOfMemoryError,
  ShapeError,
  TraceError,
  // the default device and scopes
  getDefaultDevice,
  setDefaultDevice,
  hasDefaultDevice,
  tidy,
  scope,
  keep,
  isKept,
  dispose,
  // creation
  tensor,
  zeros,
  ones,
  full,
  empty,
  arange,
  eye,
  // random (counter-based Philox: a seed reproduces the draw on every adapter)
  uniform,
  normal,
  rademacher,
  bernoulli,
  randint,
  permutation,
  randomBits,
  // settings
  setFusion,
  fusionEnabled,
  autotune,
  matmulTuning,
  setTuningStore,
  fileTuningStore,
  type DType,
  type Shape,
  type NestedArray,
  type Seed,
  type RandomOptions,
  type MemoryStats,
  type AdapterDescription,
  type CreateDeviceOptions,
  type MatmulTuning,
  type TuningStore,
} from '@metagrad/tensor';

export * from '@metagrad/autograd';
export * from '@metagrad/models';
export * from '@metagrad/meta';

// Clash: the schedule (models) over meta's alias of cosineSimilarity.
export { cosine } from '@metagrad/models';
