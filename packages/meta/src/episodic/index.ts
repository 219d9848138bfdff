/** @file Episodic meta-learning over tasks: inner optimisation, offline reverse mode, methods, trainer, diagnostics. */
export { runInner, runInnerTensors, checkInnerOptimiser, type InnerOptimiser, type InnerStep, type InnerRun, type RunInnerOptions } from './inner';
export { mixedProducts, valGradients, trainGradient, lincombTree, zerosTree, type MixedProducts } from './products';
export { reverseHypergradient, interpolate, type ReverseOptions, type ReverseResult } from './reverse';
export { ReverseHG, MissingTrajectoryError, trajectoryHypergradientTensors, type TrajectoryInput, type StoredTrajectoryInput } from './trajectory';
export {
  firstOrderMethod, hyperDistillMethod, offlineMethod, implicitMethod, trajectoryInput, type EpisodeContext, type HyperMethod, type OnlineStepCore,
  type OnlineCoreInput, type OfflineCore,
} from './methods';
export { onlineReverseMethod, type OnlineReverseOptions } from './online-reverse';
export { EpisodicTrainer, type Episode, type EpisodeRecord, type EpisodicOptions } from './trainer';
export { compareWithExact, type CosineRow } from './diagnostics';
export { anilProblem, type AnilHead, type AnilProblem, type AnilProblemOptions } from './anil';
