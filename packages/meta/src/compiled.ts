/** @file How the trainers run a compiled computation: a TraceError (it cannot be captured) means eager from then on. */
import { TraceError } from '@metagrad/tensor';
import type { CompiledFunction } from '@metagrad/autograd';

/**
 * `compiled(...args)`, or `eager(...args)` when there is none. A TraceError calls `fallBack` with its message (the
 * trainer records why and frees its plans) and returns the eager result, which is the reference; other errors pass.
 */
export async function compiledOrEager<A extends unknown[], R>(
  compiled: CompiledFunction<A, R> | null,
  eager: (...args: A) => R,
  fallBack: (reason: string) => void,
  ...args: A
): Promise<R> {
  if (!compiled) return eager(...args);
  try {
    return (await compiled(...args)) as R;
  } catch (e) {
    if (!(e instanceof TraceError)) throw e;
    fallBack(e.message);
    return eager(...args);
  }
}
