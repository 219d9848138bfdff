/** @file Raw linalg ops: batched matmul with transposed operands and broadcast batch dims, on a per-adapter kernel. */
import { MAX_WORKGROUPS_PER_DIM, matmulKernel, matmulPackDispatch, matmulPackKernel, matmulWorkgroupTile, type MatmulKernelKey } from '@metagrad/kernels-wgsl';
import { chooseMatmulVariant, type MatmulVariant } from '../autotune';
import { DTypeError, InvalidArgumentError, ShapeError } from '../errors';
import { assertSameDevice, sizeOf, tidy, type Tensor } from '../tensor';
import { fusionEnabled } from '../lazy/flag';
import { lazyOutput, type ProducerEpilogue } from '../lazy/expr';
import { empty } from './creation';
import { broadcastShapes, broadcastStrides, checkBoolean, checkOptions, checkTensors, fmt, UniformWriter } from './util';

export { autotune, chooseMatmulVariant, matmulTuning, setTuningStore, fileTuningStore, variantName } from '../autotune';
export type { MatmulVariant, MatmulTuning, TuningStore, SizeClass } from '../autotune';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  /** Forces a kernel variant (tests, benchmarks, autotuning); by default the adapter's tuned choice. */
  variant?: MatmulVariant;
}

/** Batch dims the kernels address directly (after merging dims that are contiguous in both operands). */
const MAX_BATCH_DIMS = 4;

/**
 * a `[...batchA, M, K]` (`[..., K, M]` with transA) @ b `[...batchB, K, N]` (`[..., N, K]` with transB)
 * → `[...broadcast(batchA, batchB), M, N]`, f32, rank ≥ 2 for both.
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  checkTensors('matmul', { a, b });
  checkOptions('matmul', options, ['transA', 'transB', 'variant']);
  const opts = options ?? {};
  const { transA = false, transB = false } = opts;
  checkBoolean('matmul', 'transA', transA);
  checkBoolean('matmul', 'transB', transB);
  if (opts.variant !== undefined && !['simple', 'register', 'workgroup'].includes(opts.variant?.kind)) {
    throw new InvalidArgumentError(`matmul: unknown kernel variant ${JSON.stringify(opts.variant)} (kind must be simple, register or workgroup)`);
  }
  const desc = `${fmt(a.shape)}${transA ? 'ᵀ' : ''} @ ${fmt(b.shape)}${transB ? 'ᵀ' : ''}`;
  const bufA = a.buffer;
  const bufB = b.buffer;
  assertSameDevice(a, b);
  if (a.dtype !== 'f32' || b.dtype !== 'f32') throw new DTypeError(`matmul: needs f32 operands, got ${a.dtype} ${desc} ${b.dtype}`);
  if (a.rank < 2 || b.rank < 2) throw new ShapeError(`matmul: both operands need rank >= 2 (reshape 1-D first), got ${desc}`);
  const [a0, a1] = a.shape.slice(-2);
  const [b0, b1] = b.shape.slice(-2);
  const [M, K] = transA ? [a1, a0] : [a0, a1];
  const [Kb, N] = transB ? [b1, b0] : [b0, b1];
  if (K !== Kb) throw new ShapeError(`matmul: inner dims differ (${K} vs ${Kb}) in ${desc}`);
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  let batch: number[];
  try {
    batch = broadcastShapes('matmul', batchA, batchB);
  } catch {
    throw new ShapeError(`matmul: batch dims ${fmt(batchA)} and ${fmt(batchB)} do not broadcast in ${desc}`);
  }
  // The merge pattern of batch dims does not depend on the (positive) matrix sizes, so check it before allocating.
  if (K > 0 && mergeBatchDims(batch, broadcastStrides(batchA, batch), broadcastStrides(batchB, batch)).shape.length > MAX_BATCH_DIMS) {
    throw new ShapeError(`matmul: more than ${MAX_BATCH_DIMS} non-contiguous broadcast batch dims in ${desc}`);
  }
  // tidy: a throw while packing or dispatching frees the output and the packed temporaries.
  return tidy(() => {
    const device = a.device;
    const outShape = [...batch, M, N];
    // Lazy fusion: the product stays pending (counted in bytesInUse now, as `empty` would be), so an elementwise
    // consumer of its shape can run as the kernel's epilogue (lazy/expr.ts MatmulNode). Packing happens now, as eagerly.
    const lazy = sizeOf(outShape) > 0 && fusionEnabled(device) ? lazyOutput(device, outShape) : null;
    const out = lazy ? lazy.tensor : empty(outShape, 'f32', device);
    const batchCount = sizeOf(batch);
    if (out.size === 0) return out;

    let variant: MatmulVariant = opts.variant ?? chooseMatmulVariant(device, { M, N, K, batch: batchCount, transA, transB });
    if (K === 0) variant = { kind: 'simple' }; // writes zeros without packing empty operands

    // Logical A[M,K], B[K,N] element strides inside one matrix, and the size of one stored matrix.
    let srcA = a.storage;
    let srcB = b.storage;
    let aRs = transA ? 1 : a1;
    let aCs = transA ? a1 : 1;
    let bRs = transB ? 1 : b1;
    let bCs = transB ? b1 : 1;
    let matA = a0 * a1;
    let matB = b0 * b1;
    const temps: Tensor[] = [];
    let kernelKey: MatmulKernelKey;
    if (variant.kind === 'register') {
      // The vec4 kernel wants row-major operands with row lengths that are multiples of 4: pack where they are not.
      const Kp = roundUp4(K);
      const Np = roundUp4(N);
      // Lazy fusion only (eager kernels stay as they were): Aᵀ with rows of whole vec4s is read as stored too.
      const directAT = lazy !== null && transA && Kp === K && M % 4 === 0 && variant.rows % 4 === 0;
      if (!directAT && (transA || Kp !== K)) {
        const packed = pack(device, bufA, sizeOf(batchA), M, K, M, Kp, transA);
        temps.push(packed);
        srcA = packed.storage;
        [aRs, aCs, matA] = [Kp, 1, M * Kp];
      }
      // Bᵀ with rows of whole vec4s is read as stored (4×4 blocks transposed in registers): no packing dispatch.
      const directBT = transB && Kp === K;
      if (!directBT && (transB || Kp !== K || Np !== N)) {
        const packed = pack(device, bufB, sizeOf(batchB), K, N, Kp, Np, transB);
        temps.push(packed);
        srcB = packed.storage;
        [bRs, bCs, matB] = [Np, 1, Kp * Np];
      }
      kernelKey = {
        ...variant,
        vecOut: Np === N,
        ...(directBT ? { transB: true } : {}),
        ...(directAT ? { transA: true } : {}),
      };
    } else {
      kernelKey = variant;
    }

    const merged = mergeBatchDims(
      batch,
      broadcastStrides(batchA, batch).map((s) => s * matA),
      broadcastStrides(batchB, batch).map((s) => s * matB),
    );
    if (merged.shape.length > MAX_BATCH_DIMS) {
      throw new ShapeError(`matmul: more than ${MAX_BATCH_DIMS} non-contiguous broadcast batch dims in ${desc}`);
    }
    const pad = MAX_BATCH_DIMS - merged.shape.length;
    const bshape = [...Array<number>(pad).fill(1), ...merged.shape];
    const bstrA = [...Array<number>(pad).fill(0), ...merged.stridesA];
    const bstrB = [...Array<number>(pad).fill(0), ...merged.stridesB];

    const [tileRows, tileCols] = matmulWorkgroupTile(kernelKey);
    const key = kernelKey;
    const [storA, storB] = [srcA, srcB];
    // The dispatch(es), now (eager) or when the pending product is read (lazy, maybe with an epilogue).
    const record = (outs: readonly GPUBuffer[], epi: ProducerEpilogue | null) => {
      const spec = matmulKernel(key, epi?.epilogue);
      const [bufA, bufB] = [storA.buffer, storB.buffer];
      // Dawn drops dispatches over 65535 workgroups per dimension: split rows, cols and batch into chunks.
      const rowStep = tileRows * MAX_WORKGROUPS_PER_DIM;
      const colStep = tileCols * MAX_WORKGROUPS_PER_DIM;
      for (let z0 = 0; z0 < batchCount; z0 += MAX_WORKGROUPS_PER_DIM) {
        for (let r0 = 0; r0 < M; r0 += rowStep) {
          for (let c0 = 0; c0 < N; c0 += colStep) {
            const w = new UniformWriter()
              .u32(M)
              .u32(N)
              .u32(K)
              .u32(0)
              .u32(aRs)
              .u32(aCs)
              .u32(bRs)
              .u32(bCs)
              .u32(r0)
              .u32(c0)
              .u32(z0)
              .u32(0)
              .u32s(bshape)
              .u32s(bstrA)
              .u32s(bstrB);
            if (epi) w.u32s(epi.words);
            const buffers = epi ? [bufA, bufB, ...epi.leaves, ...outs] : [bufA, bufB, outs[0]];
            device.dispatch(spec, buffers, w.finish(), [
              Math.ceil(Math.min(N - c0, colStep) / tileCols),
              Math.ceil(Math.min(M - r0, rowStep) / tileRows),
              Math.min(batchCount - z0, MAX_WORKGROUPS_PER_DIM),
            ]);
          }
        }
      }
    };
    if (lazy)
      lazy.settle({
        k: 'mm',
        shape: outShape,
        leaves: storA === storB ? [storA] : [storA, storB],
        record,
        owner: null,
      });
    else record([out.buffer], null);
    // Safe to recycle now: any later writer of these buffers is recorded after the reads above (a pending product
    // retains the packed storages until it is computed or dropped).
    for (const t of temps) t.dispose();
    return out;
  });
}

function roundUp4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

/** Zero-padded (and optionally transposed) copy of `count` logical rows×cols matrices as [count, rowsP, colsP]. */
function pack(device: Tensor['device'], src: GPUBuffer, count: number, rows: number, cols: number, rowsP: number, colsP: number, transposed: boolean): Tensor {
  const t = empty([count, rowsP, colsP], 'f32', device);
  const total = count * rowsP * colsP;
  if (total > 0) {
    const uniform = new UniformWriter().u32(rows).u32(cols).u32(rowsP).u32(colsP).u32(total).finish();
    device.dispatch(matmulPackKernel({ transposed }), [src, t.buffer], uniform, matmulPackDispatch(total));
  }
  return t;
}

/**
 * Drops size-1 batch dims and merges neighbours that are contiguous in both operands (stride[i] = stride[i+1]·shape[i+1]),
 * so the usual cases (no batch, equal batches, one side broadcast) become a single dim the kernel indexes cheaply.
 */
export function mergeBatchDims(shape: readonly number[], stridesA: readonly number[], stridesB: readonly number[]) {
  const out = { shape: [] as number[], stridesA: [] as number[], stridesB: [] as number[] };
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const last = out.shape.length - 1;
    if (last >= 0 && out.stridesA[last] === stridesA[i] * shape[i] && out.stridesB[last] === stridesB[i] * shape[i]) {
      out.shape[last] *= shape[i];
      out.stridesA[last] = stridesA[i];
      out.stridesB[last] = stridesB[i];
    } else {
      out.shape.push(shape[i]);
      out.stridesA.push(stridesA[i]);
      out.stridesB.push(stridesB[i]);
    }
  }
  return out;
}
