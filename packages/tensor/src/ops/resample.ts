/** @file Raw resample ops (filled in by the kernels work). */
export {};
