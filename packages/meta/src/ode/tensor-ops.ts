/** @file VectorOps over parameter trees of GPU tensors (a single Tensor is a tree too), so odeint, solveTracked and the adjoint run on the device. */
import * as raw from '@metagrad/tensor/raw';
import type { Tensor } from '@metagrad/tensor';
import { type ParamTree, cloneTree, disposeTree, leaves, mapTree, zipTree } from '@metagrad/models';
import type { VectorOps } from './vector-ops';

/**
 * Leafwise raw ops (never recorded on the tape, whatever the grad mode), each result a fresh tree the caller owns.
 * Structure and shapes must match (zipTree throws ShapeError naming the leaf path). The error measure and norm
 * reduce every leaf on the device and read back once per call, because a readback is a full GPU sync. Solver
 * regions run in @metagrad/tensor's `scope`, so the dynamics' and VJPs' own tensors are freed with them.
 */
export function treeVectorOps<T extends ParamTree = ParamTree>(): VectorOps<T> {
  return {
    add: (a, b) => zipTree(a, b, (x, y) => raw.add(x, y)),
    scale: (a, s) => mapTree(a, (x) => raw.mulScalar(x, s)),
    axpy: (a, x, y) => zipTree(x, y, (xi, yi) => raw.axpby(a, xi, 1, yi)) as T, // one dispatch per leaf
    norm: (a) => raw.scope(async () => Math.sqrt(sum(await readAll(raw.tidy(() => leaves(a).map((x) => raw.sum(raw.square(x)))))))),
    maxAbsRatio: (err, y0, y1, rtol, atol) =>
      raw.scope(async () => {
        const a = leaves(y0);
        const b = leaves(y1);
        const [maxima, sums] = raw.tidy(() => {
          const perLeaf = leaves(err).map((ei, i) => {
            const r = raw.div(raw.abs(ei), raw.addScalar(raw.mulScalar(raw.maximum(raw.abs(a[i]), raw.abs(b[i])), rtol), atol));
            // A GPU max may drop NaN; a sum never does, so it tells the controller to reject the step.
            return [raw.max(r), raw.sum(r)];
          });
          return [perLeaf.map(([m]) => m), perLeaf.map(([, s]) => s)];
        });
        const values = await readAll([...maxima, ...sums]);
        return values.every(Number.isFinite) ? Math.max(0, ...values.subarray(0, maxima.length)) : Infinity;
      }),
    // x·0 is 0 for a finite x and NaN for ±Infinity or NaN, and a sum keeps NaN: one readback, no overflow.
    allFinite: (a) => raw.scope(async () => (await readAll(raw.tidy(() => leaves(a).map((x) => raw.sum(raw.mulScalar(x, 0)))))).every((v) => v === 0)),
    dispose: disposeTree,
    clone: cloneTree,
    scope: raw.scope,
  };
}

/** Scalar tensors' values with one readback (concatenated on the device). */
async function readAll(scalars: Tensor[]): Promise<Float32Array> {
  if (scalars.length === 0) return new Float32Array(0);
  return (await raw
    .concat(
      scalars.map((s) => raw.reshape(s, [1])),
      0,
    )
    .toArray()) as Float32Array;
}

function sum(values: Float32Array): number {
  let s = 0;
  for (const v of values) s += v;
  return s;
}
