/** @file Public entry of @metagrad/meta (filled in by its issue). */
export {};
