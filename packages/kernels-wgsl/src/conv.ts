/** @file WGSL generators for conv kernels (filled in by the kernels work). */
export {};
