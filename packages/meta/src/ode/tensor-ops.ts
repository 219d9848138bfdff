/** @file VectorOps over parameter trees of GPU tensors (a single Tensor is a tree too), so odeint, solveTracked and the adjoint run on the device. */
import * as raw from '@metagrad/tensor';
import type { Tensor } from '@metagrad/tensor';
import { type ParamTree, cloneTree, disposeTree, leaves, mapTree, zipTree } from '@metagrad/models';
import type { VectorOps } from './vector-ops';

/**
 * Leafwise raw ops (never recorded on the tape, whatever the grad mode), each result a fresh tree the caller owns.
 * Structure and shapes must match (zipTree throws ShapeError naming the leaf path). The error measure and norm
 * reduce every leaf on the device and read back once per call, because a readback is a full GPU sync.
 */
export function treeVectorOps<T extends ParamTree = ParamTree>(): VectorOps<T> {
  return {
    add: (a, b) => zipTree(a, b, (x, y) => raw.add(x, y)),
    scale: (a, s) => mapTree(a, (x) => raw.mulScalar(x, s)),
    axpy: (a, x, y) => zipTree(x, y, (xi, yi) => raw.axpby(a, xi, 1, yi)) as T, // one dispatch per leaf
    async norm(a) {
      return Math.sqrt(await readSum(raw.tidy(() => leaves(a).map((x) => raw.sum(raw.square(x))))));
    },
    async maxAbsRatio(err, y0, y1, rtol, atol) {
      const e = leaves(err);
      const a = leaves(y0);
      const b = leaves(y1);
      const maxima: Tensor[] = [];
      const sums: Tensor[] = [];
      raw.tidy(() => e.forEach((ei, i) => {
        const scale = raw.addScalar(raw.mulScalar(raw.maximum(raw.abs(a[i]), raw.abs(b[i])), rtol), atol);
        const r = raw.div(raw.abs(ei), scale);
        maxima.push(raw.keep(raw.max(r)));
        // A GPU max may drop NaN; a sum never does, so it tells the controller to reject the step.
        sums.push(raw.keep(raw.sum(r)));
      }));
      const values = await readAll([...maxima, ...sums]);
      let m = 0;
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (!Number.isFinite(v)) return Infinity;
        if (i < maxima.length && v > m) m = v;
      }
      return m;
    },
    async allFinite(a) {
      // x·0 is 0 for a finite x and NaN for ±Infinity or NaN, and a sum keeps NaN: one readback, no overflow.
      const values = await readAll(raw.tidy(() => leaves(a).map((x) => raw.sum(raw.mulScalar(x, 0)))));
      return values.every((v) => v === 0);
    },
    dispose: (v) => disposeTree(v),
    clone: (v) => cloneTree(v),
  };
}

/** Reads scalar tensors with one readback (concatenated on the device) and disposes them. */
async function readAll(scalars: Tensor[]): Promise<Float32Array> {
  if (scalars.length === 0) return new Float32Array(0);
  const joined = raw.tidy(() => raw.concat(scalars.map((s) => raw.reshape(s, [1])), 0));
  raw.dispose(scalars);
  try {
    return (await joined.toArray()) as Float32Array;
  } finally {
    joined.dispose();
  }
}

async function readSum(scalars: Tensor[]): Promise<number> {
  const values = await readAll(scalars);
  let s = 0;
  for (const v of values) s += v;
  return s;
}
