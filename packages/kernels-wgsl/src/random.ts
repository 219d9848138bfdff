/** @file WGSL generators for random kernels (filled in by the kernels work). */
export {};
