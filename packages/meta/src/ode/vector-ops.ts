/** @file The vector-space interface the ODE solvers are generic over, its host float64/float32 implementations, and shared helpers. */
import { InvalidArgumentError } from '../errors';
import { scoped } from './scopes';

/**
 * What a solver needs from a state type V: a vector space with a norm. Host arrays implement it here; parameter
 * trees of GPU tensors (a single tensor included) in tensor-ops.ts (`treeVectorOps`).
 *
 * Ownership: every method returns a fresh V owned by the caller and never mutates or consumes its arguments. The
 * solvers run each step in a scope (scopes.ts) that releases what it made through `dispose` (needed for GPU memory,
 * absent on the host). Where `dispose` is given, give `clone` too, so that results never alias a vector the caller
 * still owns (y0, dJ/du(T)).
 * Norms may be asynchronous because on a GPU they are a readback.
 */
export interface VectorOps<V> {
  add(a: V, b: V): V;
  scale(a: V, s: number): V;
  /** a·x + y */
  axpy(a: number, x: V, y: V): V;
  /** Euclidean norm; the fallback error measure when `maxAbsRatio` is absent. */
  norm?(a: V): number | Promise<number>;
  /** max_i |err_i| / (atol + rtol·max(|y0_i|, |y1_i|)): the error measure of the adaptive controller (≤ 1 accepts). */
  maxAbsRatio?(err: V, y0: V, y1: V, rtol: number, atol: number): number | Promise<number>;
  /**
   * Whether every entry is finite. Solvers call it once per solve and on failure paths, never per step; without
   * it a finite norm stands in (which also flags finite values whose squares overflow).
   */
  allFinite?(v: V): boolean | Promise<boolean>;
  dispose?(v: V): void;
  clone?(v: V): V;
  /**
   * Runs an asynchronous solver region (a step, a tracked state) so that whatever the dynamics or a VJP make besides
   * their results is freed with it: GPU trees use @metagrad/tensor's `scope`. The vectors themselves are released
   * through `dispose` by the solvers' scopes (scopes.ts) either way.
   */
  scope?<T>(body: () => Promise<T>): Promise<T>;
}

/** A host state: anything indexable (number[], Float64Array, Float32Array); results come back as typed arrays. */
export type HostVector = ArrayLike<number>;

function hostOps(make: (n: number) => Float64Array | Float32Array, round: (x: number) => number): VectorOps<HostVector> {
  const check = (a: HostVector, b: HostVector): number => {
    if (a.length !== b.length) throw new InvalidArgumentError(`vector lengths differ: ${a.length} vs ${b.length}`);
    return a.length;
  };
  return {
    add(a, b) {
      const n = check(a, b);
      const out = make(n);
      for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
      return out;
    },
    scale(a, s) {
      const out = make(a.length);
      const sr = round(s);
      for (let i = 0; i < a.length; i++) out[i] = sr * a[i];
      return out;
    },
    axpy(a, x, y) {
      const n = check(x, y);
      const out = make(n);
      const ar = round(a);
      // Round the product before the sum: a GPU kernel in f32 does a multiply then an add, not a fused op.
      for (let i = 0; i < n; i++) out[i] = round(ar * x[i]) + y[i];
      return out;
    },
    norm(a) {
      let s = 0;
      for (let i = 0; i < a.length; i++) s += a[i] * a[i];
      return Math.sqrt(s);
    },
    maxAbsRatio(err, y0, y1, rtol, atol) {
      let m = 0;
      for (let i = 0; i < err.length; i++) {
        const r = Math.abs(err[i]) / (atol + rtol * Math.max(Math.abs(y0[i]), Math.abs(y1[i])));
        // NaN must win so that the controller rejects the step instead of accepting garbage (and a later finite
        // entry must not overwrite it, as `if (!(r <= m)) m = r` did).
        if (Number.isNaN(r)) return Number.NaN;
        if (r > m) m = r;
      }
      return m;
    },
    allFinite(v) {
      for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i])) return false;
      return true;
    },
    clone(v) {
      const out = make(v.length);
      for (let i = 0; i < v.length; i++) out[i] = v[i];
      return out;
    },
  };
}

/** Float64 host vectors: the reference implementation. */
export const hostVectorOps: VectorOps<HostVector> = hostOps(
  (n) => new Float64Array(n),
  (x) => x,
);

/**
 * Float32 host vectors: every operation rounds to f32 (results are Float32Array, scalars are rounded before use),
 * so host experiments see the same precision floor as the GPU.
 */
export const float32VectorOps: VectorOps<HostVector> = hostOps((n) => new Float32Array(n), Math.fround);

/** The ops to use when none were given: host ops for host arrays; anything else must bring its own. */
export function defaultOps<V>(ops: VectorOps<V> | undefined, sample: V, where: string): VectorOps<V> {
  if (ops) return ops;
  const isHost = Array.isArray(sample) || (ArrayBuffer.isView(sample) && !(sample instanceof DataView));
  if (!isHost) throw new InvalidArgumentError(`${where}: states that are not host arrays need options.ops (a VectorOps for them)`);
  return hostVectorOps as unknown as VectorOps<V>;
}

/** Gives the caller an owned copy where the ops track ownership (clone), else the same value. */
export function retain<V>(ops: VectorOps<V>, v: V): V {
  return ops.clone ? ops.clone(v) : v;
}

/** Releases vectors by hand (for callers outside the solvers' scopes); `undefined` entries are skipped. */
export function release<V>(ops: VectorOps<V>, ...vs: (V | undefined)[]): void {
  if (!ops.dispose) return;
  for (const v of vs) if (v !== undefined) ops.dispose(v);
}

/** base + Σ c_i·x_i, skipping zero coefficients; each partial sum a carry (freed once the next exists). A fresh vector. */
export function linComb<V>(ops: VectorOps<V>, base: V, terms: readonly (readonly [number, V])[]): V {
  const vs = scoped(ops);
  return vs.tidy(() => {
    let sum = base;
    for (const [c, x] of terms) if (c !== 0) sum = vs.carry(sum, (acc) => vs.axpy(c, x, acc));
    return sum === base ? retain(vs, base) : sum;
  });
}

/** Σ c_i·x_i (no base), for error estimates. At least one coefficient must be non-zero. */
export function weightedSum<V>(ops: VectorOps<V>, terms: readonly (readonly [number, V])[]): V {
  const nz = terms.filter(([c]) => c !== 0);
  if (nz.length === 0) throw new InvalidArgumentError('weightedSum needs a non-zero coefficient');
  const vs = scoped(ops);
  return vs.tidy(() => {
    const first = vs.scale(nz[0][1], nz[0][0]);
    return nz.length === 1 ? first : linComb(vs, first, nz.slice(1));
  });
}

/**
 * The controller's error measure of `err` relative to the solution scale: `maxAbsRatio` where the ops have it, else
 * a norm-wise fallback ‖err‖ / (atol + rtol·max(‖y0‖, ‖y1‖)), which is coarser but needs only a norm.
 */
export async function scaledError<V>(ops: VectorOps<V>, err: V, y0: V, y1: V, rtol: number, atol: number): Promise<number> {
  if (ops.maxAbsRatio) return await ops.maxAbsRatio(err, y0, y1, rtol, atol);
  if (!ops.norm) throw new InvalidArgumentError('adaptive solvers need VectorOps.maxAbsRatio or VectorOps.norm');
  // One after another: a norm may run in a scope (GPU trees), and scopes must not overlap.
  const e = await ops.norm(err);
  const a = await ops.norm(y0);
  const b = y1 === y0 ? 0 : await ops.norm(y1);
  return e / (atol + rtol * Math.max(a, b));
}

/** Whether every entry of v is finite, by `allFinite`, else by a finite norm; true when the ops can tell neither. */
export async function isAllFinite<V>(ops: VectorOps<V>, v: V): Promise<boolean> {
  if (ops.allFinite) return await ops.allFinite(v);
  if (ops.norm) return Number.isFinite(await ops.norm(v));
  return true;
}

/** ‖v‖ for error messages; NaN when the ops have no norm. */
export async function normForMessage<V>(ops: VectorOps<V>, v: V): Promise<number> {
  return ops.norm ? await ops.norm(v) : Number.NaN;
}
