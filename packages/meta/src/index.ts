/** @file Public entry of @metagrad/meta: ODE solvers and the adjoint meta-gradient (meta-learners and estimators are added by their issues). */
export { NeumannDivergenceError, NonFiniteDynamicsError, NonFiniteGradientError, NonFiniteHypergradientError, StepSizeUnderflowError, TooManyStepsError } from './errors';
export * from './ode';
export * from './hypergrad/types';
export * from './hypergrad/index';
export * from './maml';
export * from './core';
export * from './episodic';
export * from './implicit';
export * from './hyperdistill';
