/** @file The shared episodic core that episodic/, hyperdistill/ and implicit/ import from (it imports none of them). */
export {
  runInner,
  runInnerTensors,
  checkInnerOptimiser,
  type InnerOptimiser,
  type InnerStep,
  type InnerRun,
  type RunInnerOptions,
} from './inner';
export {
  mixedProducts,
  valGradients,
  trainGradient,
  trainLossAndGradient,
  lincombTree,
  zerosTree,
  type MixedProducts,
} from './products';
export {
  reverseHypergradient,
  reverseStart,
  reverseStep,
  interpolate,
  type ReverseOptions,
  type ReverseResult,
  type ReverseState,
} from './reverse';
export {
  MissingTrajectoryError,
  checkTrajectoryInput,
  trajectoryHypergradient,
  trajectoryHypergradientTensors,
  type TrajectoryInput,
  type StoredTrajectoryInput,
} from './trajectory';
export { checkHypergradNorm, checkedEstimate, type CheckedHypergradResult } from './checked';
export {
  trajectoryInput,
  type EpisodeContext,
  type HyperMethod,
  type OnlineStepCore,
  type OnlineCoreInput,
  type OfflineCore,
} from './method';
export { MissingBatchOpsError, regressionBatchOps, type BatchOps, type RegressionBatch } from './batches';
