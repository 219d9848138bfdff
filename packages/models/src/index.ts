/** @file Public entry of @metagrad/models (filled in by its issue). */
export {};
