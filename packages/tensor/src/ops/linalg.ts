/** @file Raw linalg ops (filled in by the kernels work). */
export {};
