/** @file Raw random ops (filled in by the kernels work). */
export {};
