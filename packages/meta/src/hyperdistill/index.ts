/** @file HyperDistill and DrMAD: the paper's Algorithms 2–4 (built on the shared episodic core, ../core). */
export { DrMAD } from './drmad';
export {
  HyperDistill,
  type HyperDistillOptions,
  type HyperDistillInput,
  type HyperDistillStepArgs,
} from './hyperdistill';
export { hyperDistillMethod } from './method';
export { distilledLookahead, type DistilledLookaheadInput } from './distilled-lookahead';
export {
  linearEstimation,
  type LinearEstimationInput,
  type LinearEstimationResult,
  type MomentumJacobian,
} from './linear-estimation';
export { decaySum, onlineMix, reverseMix } from './weights';
export { distillBatch, distilledCounts } from './distilled-batch';
