/** @file Public entry of @metagrad/tensor (browser-safe: the Node adapter helper lives in './node'). */
export * from './errors';
export * from './device';
export * from './pool';
export * from './tensor';
export * from './runtime';
export * from './ops/util';
export * from './ops/creation';
export * from './ops/elementwise';
export * from './ops/reduce';
export * from './ops/random';
export * from './ops/movement';
export * from './ops/linalg';
export * from './ops/conv';
export * from './ops/pool';
export * from './ops/resample';
