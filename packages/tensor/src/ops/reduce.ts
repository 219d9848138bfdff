/** @file Raw reduce ops (filled in by the kernels work). */
export {};
