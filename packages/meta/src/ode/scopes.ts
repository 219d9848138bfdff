/** @file Scopes over a VectorOps: what the ops (and a solver's f) make inside one is released when it ends, except what it returns. */
import type { VectorOps } from './vector-ops';

/**
 * The ops with lifetimes, as @metagrad/tensor's `tidy` and `scope` give tensors: every vector the ops create (and
 * every vector handed to `own`) belongs to the innermost open scope, which releases it when it ends unless its
 * result holds it (arrays, plain objects and Maps are searched); a held vector moves to the enclosing scope, or to
 * the caller at the outermost one. A throw releases everything the scope made. `carry(state, step)` is one step of a
 * loop-carried state: the step runs in its own scope, then the old state's vectors that the current scope owns and
 * the new state does not hold are released, so a loop keeps one state alive, not one per iteration; `take(value)`
 * makes the current scope the owner of what `value` holds (a scope that consumes its input). An async `scope` also
 * runs inside `ops.scope` where the ops have one (GPU trees: @metagrad/tensor's `scope`), so whatever f or a VJP
 * makes besides its result (a Hessian operator, say) goes with it; `carry` and `tidy` track the vectors only.
 *
 * One stack per ops object (`scoped(ops)` returns the same instance), so the forward solve, a recomputation called
 * from the adjoint and the adjoint itself nest properly; as with @metagrad/tensor's `scope`, do not run two solves
 * on the same ops concurrently. Ops without `dispose` (host arrays) need none of this: their scopes just run.
 */
export interface ScopedOps<V> extends VectorOps<V> {
  /** A synchronous scope. */
  tidy<T>(body: () => T): T;
  /** An asynchronous scope (across its awaits). */
  scope<T>(body: () => Promise<T>): Promise<T>;
  /** One step of a loop-carried state (see above), synchronous or asynchronous as `step` is. */
  carry<S, N = S>(state: S, step: (state: S) => N): N;
  /** Registers a vector made outside the ops (f's result, a VJP's) as made in the current scope; returns it. */
  own(v: V): V;
  /** Moves the tracked vectors `value` holds into the current scope, whichever open scope owned them; returns it. */
  take<T>(value: T): T;
}

type Scoping<V> = Pick<ScopedOps<V>, 'tidy' | 'scope' | 'carry' | 'own' | 'take'>;

function isThenable(x: unknown): x is Promise<unknown> {
  return typeof (x as { then?: unknown } | null)?.then === 'function';
}

const cache = new WeakMap<object, ScopedOps<unknown>>();

/** The scoped form of `ops` (the same instance for the same ops, and `ops` itself if it is already scoped). */
export function scoped<V>(ops: VectorOps<V>): ScopedOps<V> {
  if (typeof (ops as Partial<ScopedOps<V>>).carry === 'function') return ops as ScopedOps<V>;
  let out = cache.get(ops) as ScopedOps<V> | undefined;
  if (!out) {
    const plain: Scoping<V> = {
      tidy: (b) => b(),
      scope: (b) => b(),
      carry: (s, step) => step(s),
      own: (v) => v,
      take: (x) => x,
    };
    // The ops stay the prototype, so their other methods (and any `this` they use) are reached unchanged.
    out = Object.assign(Object.create(ops) as VectorOps<V>, ops.dispose ? tracking(ops, ops.dispose.bind(ops)) : plain) as ScopedOps<V>;
    cache.set(ops, out as ScopedOps<unknown>);
  }
  return out;
}

/** The scoped methods, and the creating methods that register their results. */
function tracking<V>(ops: VectorOps<V>, release: (v: V) => void): Scoping<V> & Pick<VectorOps<V>, 'add' | 'scale' | 'axpy' | 'clone'> {
  const open: Set<V>[] = [];
  const own = (v: V): V => {
    if (open.length && !open.some((s) => s.has(v))) open[open.length - 1].add(v);
    return v;
  };
  /** The vectors of `among` that `value` holds (itself, or inside its arrays, plain objects and Maps). */
  const held = (value: unknown, among: Set<V>, out = new Set<V>()): Set<V> => {
    if (among.has(value as V)) out.add(value as V);
    else if (Array.isArray(value)) for (const x of value) held(x, among, out);
    else if (value instanceof Map) for (const x of value.values()) held(x, among, out);
    else if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      for (const x of Object.values(value)) held(x, among, out);
    }
    return out;
  };
  /** Ends the innermost scope: frees what `result` does not hold and hands the rest to the enclosing scope. */
  const close = (mine: Set<V>, result: unknown, failed: boolean): void => {
    open.splice(open.lastIndexOf(mine), 1);
    const kept = failed ? new Set<V>() : held(result, mine);
    const parent = open[open.length - 1];
    for (const v of mine) {
      if (kept.has(v)) parent?.add(v);
      else release(v);
    }
  };
  /** Runs `body` in a new innermost scope, closing it when `body` returns or, for a promise, settles. */
  const enter = <T>(body: () => T): T => {
    const mine = new Set<V>();
    open.push(mine);
    let result: T;
    try {
      result = body();
    } catch (e) {
      close(mine, undefined, true);
      throw e;
    }
    if (!isThenable(result)) {
      close(mine, result, false);
      return result;
    }
    return result.then(
      (value) => (close(mine, value, false), value),
      (e: unknown) => {
        close(mine, undefined, true);
        throw e;
      },
    ) as T;
  };
  const tidy = <T>(body: () => T): T => enter(body);
  const scope = <T>(body: () => Promise<T>): Promise<T> => (ops.scope ? ops.scope(() => enter(body)) : enter(body));
  const carry = <S, N>(state: S, step: (state: S) => N): N => {
    /** Frees the old state's vectors that the current scope owns and `next` does not hold. */
    const replace = (next: unknown): void => {
      const top = open[open.length - 1];
      if (!top) return;
      const live = held(next, top);
      for (const v of held(state, top)) {
        if (live.has(v)) continue;
        top.delete(v);
        release(v);
      }
    };
    const next = enter(() => step(state));
    if (!isThenable(next)) {
      replace(next);
      return next;
    }
    return next.then((value) => (replace(value), value)) as N;
  };
  const take = <T>(value: T): T => {
    const top = open[open.length - 1];
    if (!top) return value;
    for (const owner of open) {
      if (owner === top) continue;
      for (const v of held(value, owner)) {
        owner.delete(v);
        top.add(v);
      }
    }
    return value;
  };
  const track =
    <A extends unknown[]>(fn: (...args: A) => V) =>
    (...args: A): V =>
      own(fn(...args));
  return {
    add: track(ops.add.bind(ops)),
    scale: track(ops.scale.bind(ops)),
    axpy: track(ops.axpy.bind(ops)),
    ...(ops.clone ? { clone: track(ops.clone.bind(ops)) } : {}),
    tidy,
    scope,
    carry,
    own,
    take,
  };
}
