/** @file ODE solvers and the adjoint meta-gradient: public surface of packages/meta/src/ode. */
export {
  type VectorOps,
  type HostVector,
  hostVectorOps,
  float32VectorOps,
  retain,
  release,
  linComb,
} from './vector-ops';
export { type OdeFunc, type SolverStats, type FixedMethod, FIXED_ORDER } from './steppers';
export { odeint, odeintDetailed, type OdeMethod, type OdeintOptions, type OdeintResult } from './odeint';
export { solveTracked, type TrackOptions, type TrackedSolution } from './track';
export {
  adjointGradient,
  type AdjointVjp,
  type AdjointMethod,
  type AdjointOptions,
  type AdjointResult,
} from './adjoint';
export { treeVectorOps } from './tensor-ops';
export { autogradPullback, type DifferentiableDynamics, type Pullback } from './autograd-vjp';
