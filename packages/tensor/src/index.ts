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
