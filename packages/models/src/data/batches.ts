/** @file Seeded shuffling mini-batch index iterators and row gathering for host arrays. */
import { describeValue, IndexOutOfRangeError, InvalidArgumentError } from '@metagrad/tensor';
import { Rng } from './random';

export interface BatchIteratorOptions {
  /** Number of examples. */
  n: number;
  batchSize: number;
  seed: number;
  /** Drop the last, smaller batch of each epoch (keeps every batch the same shape, so pipelines are reused). */
  dropLast?: boolean;
  /** Epochs to run; Infinity for an endless stream. Default 1. */
  epochs?: number;
  /** Reshuffle every epoch (default true); false gives 0..n−1 in order, e.g. for evaluation. */
  shuffle?: boolean;
}

/**
 * Yields index arrays (Int32Array, ready to upload for a GPU gather or to pass to takeRows). Each epoch is
 * a fresh permutation from one seeded stream, so a run is reproducible from `seed` alone.
 */
export function* batchIterator(options: BatchIteratorOptions): Generator<Int32Array, void, undefined> {
  const { n, batchSize, seed, dropLast = false, epochs = 1, shuffle = true } = options;
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`batchIterator: n must be a non-negative integer, got ${n}`);
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchIterator: batchSize must be a positive integer, got ${batchSize}`);
  }
  if (!(epochs >= 0) || (Number.isFinite(epochs) && !Number.isInteger(epochs))) {
    throw new RangeError(`batchIterator: epochs must be a non-negative integer or Infinity, got ${epochs}`);
  }
  // An endless stream that can never yield would spin forever.
  if (!Number.isFinite(epochs) && batchesPerEpoch(n, batchSize, dropLast) === 0) {
    throw new RangeError(`batchIterator: n=${n} with batchSize=${batchSize} and dropLast yields no batch; epochs=Infinity would hang`);
  }
  const rng = new Rng(seed);
  const order = new Int32Array(n);
  for (let epoch = 0; epoch < epochs; epoch++) {
    for (let i = 0; i < n; i++) order[i] = i;
    if (shuffle) rng.shuffle(order);
    for (let start = 0; start < n; start += batchSize) {
      const end = Math.min(start + batchSize, n);
      if (dropLast && end - start < batchSize) break;
      yield order.slice(start, end);
    }
  }
}

/** Batches per epoch for the same options. */
export function batchesPerEpoch(n: number, batchSize: number, dropLast = false): number {
  return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

type RowArray = Float32Array | Float64Array | Int32Array | Uint32Array | Uint8Array | Int8Array | Int16Array | Uint16Array;

/**
 * Gathers rows of `rowSize` elements (e.g. 28·28 for images, 1 for labels) at `indices` into a new array of
 * the same type: the host-side mini-batch for an index array from batchIterator.
 */
export function takeRows<A extends RowArray>(array: A, rowSize: number, indices: ArrayLike<number>): A {
  if (!ArrayBuffer.isView(array) || array instanceof DataView) {
    throw new InvalidArgumentError(`takeRows: array must be a typed array (Float32Array, Int32Array, …), got ${describeValue(array)}`);
  }
  if (indices === null || typeof indices !== 'object' || typeof indices.length !== 'number') {
    throw new InvalidArgumentError(`takeRows: indices must be an array or typed array of row numbers, got ${describeValue(indices)}`);
  }
  if (!Number.isInteger(rowSize) || rowSize < 1 || array.length % rowSize !== 0) {
    throw new InvalidArgumentError(`takeRows: array of ${array.length} elements is not a whole number of rows of ${describeValue(rowSize)}`);
  }
  const rows = array.length / rowSize;
  const out = new (array.constructor as new (length: number) => A)(indices.length * rowSize);
  for (let r = 0; r < indices.length; r++) {
    const index = indices[r];
    if (!(Number.isInteger(index) && index >= 0 && index < rows)) {
      // The same class as a GPU gather's bad index, so one catch handles either path.
      throw new IndexOutOfRangeError(
        `takeRows: row index ${describeValue(index)} (indices[${r}]) out of range [0, ${rows}) for rows of ${rowSize}`,
        'takeRows',
      );
    }
    if (rowSize === 1) out[r] = array[index];
    else out.set(array.subarray(index * rowSize, (index + 1) * rowSize), r * rowSize);
  }
  return out;
}
