/** @file WGSL generators for pool kernels (filled in by the kernels work). */
export {};
