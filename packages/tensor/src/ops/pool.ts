/** @file Raw pool ops (filled in by the kernels work). */
export {};
