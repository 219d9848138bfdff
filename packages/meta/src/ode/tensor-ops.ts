/** @file VectorOps over parameter trees of GPU tensors (a single Tensor is a tree too), so odeint, solveTracked and the adjoint run on the device. */
import * as raw from '@metagrad/tensor';
import type { Tensor } from '@metagrad/tensor';
import { type ParamTree, disposeTree, leaves, mapTree, zipTree } from '@metagrad/models';
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
    axpy(a, x, y) {
      return zipTree(x, y, (xi, yi) => {
        const ax = raw.mulScalar(xi, a);
        const out = raw.add(ax, yi);
        ax.dispose();
        return out;
      }) as T;
    },
    async norm(a) {
      const parts = leaves(a).map((x) => {
        const sq = raw.square(x);
        const s = raw.sum(sq);
        sq.dispose();
        return s;
      });
      const total = await readSum(parts);
      return Math.sqrt(total);
    },
    async maxAbsRatio(err, y0, y1, rtol, atol) {
      const e = leaves(err);
      const a = leaves(y0);
      const b = leaves(y1);
      const maxima: Tensor[] = [];
      const sums: Tensor[] = [];
      e.forEach((ei, i) => {
        const r = raw.tidy(() => {
          const scale = raw.addScalar(raw.mulScalar(raw.maximum(raw.abs(a[i]), raw.abs(b[i])), rtol), atol);
          return raw.div(raw.abs(ei), scale);
        });
        maxima.push(raw.max(r));
        // A GPU max may drop NaN; a sum never does, so it tells the controller to reject the step.
        sums.push(raw.sum(r));
        r.dispose();
      });
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
      const parts = leaves(a).map((x) => {
        const zeroed = raw.mulScalar(x, 0);
        const s = raw.sum(zeroed);
        zeroed.dispose();
        return s;
      });
      const values = await readAll(parts);
      return values.every((v) => v === 0);
    },
    dispose: (v) => disposeTree(v),
    clone: (v) => mapTree(v, (x) => raw.mulScalar(x, 1)),
  };
}

/** Reads scalar tensors with one readback (concatenated on the device) and disposes them. */
async function readAll(scalars: Tensor[]): Promise<Float32Array> {
  if (scalars.length === 0) return new Float32Array(0);
  const flat = scalars.map((s) => raw.reshape(s, [1]));
  const joined = flat.length === 1 ? flat[0] : raw.concat(flat, 0);
  try {
    return (await joined.toArray()) as Float32Array;
  } finally {
    if (joined !== flat[0]) joined.dispose();
    for (const t of [...flat, ...scalars]) t.dispose();
  }
}

async function readSum(scalars: Tensor[]): Promise<number> {
  const values = await readAll(scalars);
  let s = 0;
  for (const v of values) s += v;
  return s;
}
