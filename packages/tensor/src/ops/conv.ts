/** @file Raw conv ops (filled in by the kernels work). */
export {};
