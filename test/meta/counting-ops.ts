/** @file Test helper: host vector ops that track every vector they create, to catch solver leaks and stray releases. */
import { type HostVector, type VectorOps, hostVectorOps } from '@metagrad/meta';

export type CountingOps = VectorOps<HostVector> & {
  /** Vectors created (by the ops or by a function wrapped with `owned`) and not yet released. */
  live: Set<HostVector>;
  /** Wraps f or a VJP whose results are handed to the solver, so those count as created too. */
  owned<A extends unknown[]>(fn: (...args: A) => HostVector | Promise<HostVector>): (...args: A) => Promise<HostVector>;
};

export function countingOps(): CountingOps {
  const live = new Set<HostVector>();
  const track = (v: HostVector): HostVector => (live.add(v), v);
  return {
    live,
    owned:
      (fn) =>
      async (...args) =>
        track(await fn(...args)),
    add: (x, y) => track(hostVectorOps.add(x, y)),
    scale: (x, s) => track(hostVectorOps.scale(x, s)),
    axpy: (s, x, y) => track(hostVectorOps.axpy(s, x, y)),
    clone: (x) => track(hostVectorOps.clone!(x)),
    maxAbsRatio: hostVectorOps.maxAbsRatio,
    norm: hostVectorOps.norm,
    allFinite: hostVectorOps.allFinite,
    dispose: (v) => {
      if (!live.delete(v)) throw new Error('released a vector the ops did not create or already released');
    },
  };
}
