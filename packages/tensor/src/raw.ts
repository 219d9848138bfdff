/**
 * @file `@metagrad/tensor/raw`: the raw, non-recording ops (one GPU kernel each, no autograd tape) beside everything
 * the main entry exports. The differentiable ops of the same names live in @metagrad/autograd (and the umbrella
 * `metagrad` package); import from here only where a gradient must not flow: optimiser updates, metrics, running
 * statistics, kernels inside a VJP rule. Keeping these out of the main entry means a plain
 * `import { add } from '@metagrad/tensor'` fails to compile instead of silently recording nothing.
 */
export * from './index';
export * from './ops/elementwise';
export * from './ops/reduce';
export * from './ops/movement';
export * from './ops/linalg';
export * from './ops/conv';
export * from './ops/pool';
export * from './ops/resample';
