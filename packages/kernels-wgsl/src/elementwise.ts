/** @file WGSL generators for elementwise kernels (filled in by the kernels work). */
export {};
