/** @file Reference batched matmul with transposed operands and broadcast batch dims. */

import { ShapeError } from '../errors';
import { checkBoolean, checkOptions } from './args';
import { type RefTensor, broadcastShapes, broadcastStrides, forEachOffset, shapeStr, sizeOf } from './types';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

/**
 * a: [...batchA, M, K] ([..., K, M] when transA), b: [...batchB, K, N] ([..., N, K] when transB),
 * out: [...broadcast(batchA, batchB), M, N]. Accumulates in float64 in k order.
 */
export function matmul(a: RefTensor, b: RefTensor, opts: MatmulOptions = {}): RefTensor {
  // 'variant' picks a GPU kernel; the reference has one algorithm and ignores it.
  const { transA = false, transB = false } = checkOptions('matmul', opts, ['transA', 'transB', 'variant']) as MatmulOptions;
  checkBoolean('matmul', 'transA', transA);
  checkBoolean('matmul', 'transB', transB);
  const ra = a.shape.length;
  const rb = b.shape.length;
  const desc = () => `${shapeStr(a.shape)}${transA ? 'ᵀ' : ''} @ ${shapeStr(b.shape)}${transB ? 'ᵀ' : ''}`;
  if (ra < 2 || rb < 2) throw new ShapeError(`matmul: both operands need rank >= 2, got ${desc()}`);
  const [a0, a1] = a.shape.slice(-2);
  const [b0, b1] = b.shape.slice(-2);
  const [M, K] = transA ? [a1, a0] : [a0, a1];
  const [Kb, N] = transB ? [b1, b0] : [b0, b1];
  if (K !== Kb) throw new ShapeError(`matmul: inner dims differ (${K} vs ${Kb}) in ${desc()}`);
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  let batch: number[];
  try {
    batch = broadcastShapes(batchA, batchB);
  } catch {
    throw new ShapeError(`matmul: batch dims do not broadcast in ${desc()}`);
  }
  // Element strides of the logical (post-transpose) matrices inside one batch item.
  const [aRow, aCol] = transA ? [1, a1] : [a1, 1];
  const [bRow, bCol] = transB ? [1, b1] : [b1, 1];
  const strides = [broadcastStrides(batchA, batch).map((s) => s * a0 * a1), broadcastStrides(batchB, batch).map((s) => s * b0 * b1)];
  const out = new Float64Array(sizeOf(batch) * M * N);
  forEachOffset(batch, strides, (bi, o) => {
    const ao = o[0];
    const bo = o[1];
    const base = bi * M * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += a.data[ao + i * aRow + k * aCol] * b.data[bo + k * bRow + j * bCol];
        out[base + i * N + j] = acc;
      }
    }
  });
  return { shape: [...batch, M, N], data: out };
}
