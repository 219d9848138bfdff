/** @file How the trainers run compiled computations: a TraceError (it cannot be captured) means eager from then on. */
import { TraceError, type Device } from '@metagrad/tensor';
import { compile, type CompiledFunction } from '@metagrad/autograd';

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

/**
 * A trainer's compiled computations (`compile` from @metagrad/autograd), replayed until one of them hits a
 * TraceError: then every plan is freed, `fallback` says why, and the trainer runs eagerly from then on.
 */
export class CompiledSteps {
  /** Why the trainer fell back to eager steps (a TraceError's message), or null. */
  fallback: string | null = null;
  private readonly plans = new Set<Pick<CompiledFunction<never[], unknown>, 'dispose'>>();

  /** `enabled`: whether to compile at all (the trainers' `compile` option). */
  constructor(
    private readonly enabled: boolean,
    private readonly device?: Device,
  ) {}

  /** `fn` compiled, or null when compiling is off. */
  add<A extends unknown[], R>(fn: (...args: A) => R): CompiledFunction<A, R> | null {
    if (!this.enabled) return null;
    const compiled = compile(fn, this.device ? { device: this.device } : {});
    this.plans.add(compiled);
    return compiled;
  }

  /** `step` while it is one of the live plans, else null. */
  live<A extends unknown[], R>(step: CompiledFunction<A, R> | null): CompiledFunction<A, R> | null {
    return step && this.plans.has(step) ? step : null;
  }

  /** The step's replay while the plans live, else `eager(...args)`. */
  run<A extends unknown[], R>(step: CompiledFunction<A, R> | null, eager: (...args: A) => R, ...args: A): Promise<R> {
    return compiledOrEager(
      this.live(step),
      eager,
      (reason) => {
        this.fallback = reason;
        this.dispose();
      },
      ...args,
    );
  }

  /** Frees every plan (their arenas); the trainer keeps working, eagerly. */
  dispose(): void {
    for (const plan of this.plans) plan.dispose();
    this.plans.clear();
  }
}
