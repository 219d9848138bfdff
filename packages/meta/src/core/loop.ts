/** @file Loop-carried state under scopes: each step frees what it made and did not return, and the state it replaced. */
import { collectTensors, keep, scope, tidy } from '@metagrad/tensor';

/**
 * `state ← step(state)` as one synchronous step of a loop (jax's `fori_loop` carry): what `step` makes and does not
 * return is freed, and so is every tensor of the old state that the new state no longer holds, except those
 * reachable from `borrowed` (the caller's inputs: w_0, α_T, the training batches). The old state must not be used
 * afterwards.
 */
export function carry<S, N = S>(state: S, step: (s: S) => N, borrowed?: unknown): N {
  return replace(
    state,
    tidy(() => step(state)),
    borrowed,
  );
}

/** `carry` for an async step (a hook, a readback): the step runs in a `scope`. */
export async function carryAsync<S>(state: S, step: (s: S) => Promise<S>, borrowed?: unknown): Promise<S> {
  return replace(state, await scope(() => step(state)), borrowed);
}

/** Marks every tensor of `value` to outlive the scopes it was made in: state an object owns across calls. */
export function keepAll<T>(value: T): T {
  for (const t of collectTensors(value)) keep(t);
  return value;
}

function replace<N>(old: unknown, next: N, borrowed: unknown): N {
  const live = collectTensors(borrowed, collectTensors(next));
  for (const t of collectTensors(old)) if (!live.has(t)) t.dispose();
  return next;
}
