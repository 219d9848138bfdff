/** @file HyperDistill and DrMAD: the paper's Algorithms 2–4. */
export { DrMAD } from './drmad';
export { HyperDistill, type HyperDistillOptions, type HyperDistillInput, type HyperDistillStepArgs } from './hyperdistill';
export { linearEstimation, type LinearEstimationInput, type LinearEstimationResult, type MomentumJacobian } from './linear-estimation';
export { decaySum, onlineMix, reverseMix } from './weights';
export { distillBatch, distilledCounts, MissingBatchOpsError, regressionBatchOps, type BatchOps, type RegressionBatch } from './batches';
