/** @file WGSL generators for movement kernels (filled in by the kernels work). */
export {};
