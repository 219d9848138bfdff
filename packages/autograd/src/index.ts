/** @file Public entry of @metagrad/autograd: differentiable ops, the tape API, functional transforms, checks. */
export { backward, requiresGrad, detach, type GradOptions, type BackwardOptions } from './engine';
export {
  grad,
  valueAndGrad,
  GradFormError,
  type Argnums,
  type AuxFn,
  type AuxTransformOptions,
  type GradOf,
  type ScalarFn,
  type TensorTree,
  type TransformOptions,
  type ValueAndGrad,
  type ValueAndGradAux,
} from './transforms';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled } from './mode';
export { GraphFreedError, LeafNode, OpNode, Node } from './graph';
export { formatGraph } from './debug';
export type { Prim, PrimAttrs, VjpRule, VjpContext, RuleTable } from './prims';
export { VJP_RULES } from './rules';
export {
  customVjp,
  NotTwiceDifferentiableError,
  type CustomVjpOptions,
  type CustomBackwardContext,
  type CustomForwardResult,
} from './custom';
export { vjp, jvp, hvp, jacobian, HvpOperator, type FunctionalOptions } from './functional';
export { memory, assertNoLeaks, expectNoLeaks, LeakError, type AutogradMemoryStats } from './memory';
export {
  gradcheck,
  gradgradcheck,
  GradcheckError,
  type GradcheckOptions,
  type GradcheckReport,
  type CheckedFunction,
  type CheckInput,
  type RefTensorLike,
} from './gradcheck';
export * from './ops/elementwise';
export * from './ops/reduce';
export * from './ops/movement';
export * from './ops/linalg';
export * from './ops/conv';
export * from './ops/pool';
export * from './ops/resample';
export * from './ops/losses';
export { compile, type CompileOptions, type CompileStats, type CompiledFunction } from './compile';
