/** @file WGSL generators for matmul kernels (filled in by the kernels work). */
export {};
