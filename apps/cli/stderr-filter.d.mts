/** @file Types of stderr-filter.mjs (the launcher's filter of Dawn's native stderr). */
export declare function createDawnStderrFilter(): (line: string) => string | null;
export declare function pipeFiltered(input: NodeJS.ReadableStream, output: NodeJS.WritableStream, filter?: (line: string) => string | null): Promise<void>;
