/** @file Raw movement ops (filled in by the kernels work). */
export {};
