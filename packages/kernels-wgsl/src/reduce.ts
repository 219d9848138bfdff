/** @file WGSL generators for reduce kernels (filled in by the kernels work). */
export {};
