/** @file Implicit-function-theorem hypergradients: Neumann series and conjugate gradients over HVPs. */
export { NeumannIFT, type NeumannOptions } from './neumann';
export { ConjugateGradientIFT, type ConjugateGradientOptions } from './cg';
