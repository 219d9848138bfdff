/** @file Public entry of @metagrad/kernels-wgsl: pure WGSL generators, all rendered by renderKernel (render.ts). */
export * from './types';
export * from './wgsl-math';
export * from './render';
export * from './basic';
export * from './elementwise';
export * from './fused';
export * from './reduce';
export * from './random';
export * from './movement';
export * from './index-flags';
export * from './matmul';
export * from './conv';
export * from './pool';
export * from './resample';
