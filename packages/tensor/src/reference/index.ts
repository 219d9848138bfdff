/** @file Float64 reference implementations of every OPS.md primitive: the oracle for GPU kernels and autograd. */

export * from './types';
export * from './creation';
export * from './random';
export * from './elementwise';
export * from './reduce';
export * from './movement';
export * from './linalg';
export * from './conv';
export * from './pool';
export * from './resample';
