/** @file WGSL generators for resample kernels (filled in by the kernels work). */
export {};
