/** @file Optimisers: functional (differentiable) and in-place SGD/Adam, and learning-rate schedules. */
export { InvalidHyperparameterError } from './errors';
export type { FunctionalOptimizer, Hyper, Schedule } from './types';
export { sgd, SGD, type SgdOptions, type SgdState } from './sgd';
export { adam, Adam, type AdamOptions, type AdamState } from './adam';
export { stepLR, linearDecay, cosine } from './schedules';
