/** @file The online hypergradient estimators (FirstOrder, T1–T2, EvoGrad, unrolled RMD), their diagnostics and the online trainer. */
export { FirstOrder } from './first-order';
export { OneStepLookahead } from './lookahead';
export { EvoGrad, type EvoGradNoise, type EvoGradOptions } from './evograd';
export { UnrolledRMD, type UnrolledRMDOptions } from './unrolled';
export {
  cosine,
  cosineSimilarity,
  pearsonCorrelation,
  compareToReference,
  compareVectors,
  hypergradCosine,
  treeToVector,
  vectorNorm,
  type HypergradComparison,
} from './diagnostics';
export { batchedMlp } from './batched-mlp';
export { metaWeightNetProblem, type ClassificationBatch, type MetaWeightNetProblemOptions } from './mwn';
export {
  OnlineTrainer,
  type InPlaceOptimizer,
  type OnlineStepLog,
  type OnlineTrainerOptions,
  type UpdateOrder,
} from './trainer';
