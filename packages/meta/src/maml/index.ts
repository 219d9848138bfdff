/** @file Initialisation meta-learning: MAML, FOMAML, Reptile, iMAML and Adjoint-MAML behind one interface, plus meta-batching, outer steps and adaptation. */
export * from './types';
export { MAML, FOMAML, type MamlOptions } from './maml';
export { Reptile } from './reptile';
export { mseRegressionProblem } from './regression-problem';
export { iMAML, type ImamlOptions } from './imaml';
export { AdjointMAML, type AdjointMamlOptions } from './adjoint-maml';
export * from './train';
export { metaGradientBatch, metaGradientBatchTensors, type BatchMetaGradient } from './batch';
