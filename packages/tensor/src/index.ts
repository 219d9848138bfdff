/**
 * @file Public entry of @metagrad/tensor (browser-safe: the Node adapter helper lives in './node'): devices, Tensor,
 * tidy scopes, errors, creation and random functions, fusion and matmul-tuning settings, capture/replay. The raw
 * (non-recording) ops are in './raw' (`@metagrad/tensor/raw`): the differentiable ops of the same names are
 * @metagrad/autograd's, so a plain import can never drop a gradient.
 */
export * from './errors';
export * from './device';
export * from './pool';
export * from './tensor';
export * from './runtime';
export * from './ops/util';
export * from './ops/creation';
export * from './ops/random';
export { setFusion, fusionEnabled, fusionOverride } from './lazy/flag';
export { autotune, chooseMatmulVariant, matmulTuning, setTuningStore, fileTuningStore, variantName } from './autotune';
export type { MatmulVariant, MatmulTuning, TuningStore, SizeClass } from './autotune';
export * from './capture/recording';
export * from './capture/plan';
export * from './capture/compare';
// TRANSITIONAL (issue 17): the raw ops stay importable from the main entry until packages/meta and the experiments
// import them from './raw'; then this block goes and `import { add } from '@metagrad/tensor'` stops compiling.
export * from './ops/elementwise';
export * from './ops/reduce';
export * from './ops/movement';
export * from './ops/linalg';
export * from './ops/conv';
export * from './ops/pool';
export * from './ops/resample';
