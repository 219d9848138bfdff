/** @file Public entry of @metagrad/meta: online hypergradient estimators, the shared episodic core, episodic trainer and methods, IFT and HyperDistill estimators, initialisation meta-learners, ODE solvers and the adjoint. */
export {
  NeumannDivergenceError,
  NonFiniteDynamicsError,
  NonFiniteGradientError,
  NonFiniteHypergradientError,
  StepSizeUnderflowError,
  TooManyStepsError,
} from './errors';
export * from './ode';
export * from './hypergrad/types';
export * from './hypergrad/index';
export * from './maml';
export * from './core';
export * from './episodic';
export * from './implicit';
export * from './hyperdistill';
