/** @file Raw elementwise ops (filled in by the kernels work). */
export {};
