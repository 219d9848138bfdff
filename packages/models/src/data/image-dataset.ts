/**
 * @file Labelled image datasets as plain host arrays (browser-safe): building one from IDX image and label
 * arrays with consistency checks, and selecting subsets of examples.
 */
import { CorruptDatasetError } from './errors';
import type { IdxArray } from './idx';
import { Rng } from './random';

/** N greyscale images, row-major N×H×W, values in [0, 1]; labels are class indices. */
export interface ImageDataset {
  images: Float32Array;
  labels: Int32Array;
  n: number;
  height: number;
  width: number;
}

export interface FromIdxOptions {
  /** Keep only the first `limit` examples (the file order; shuffle afterwards if you need a random subset). */
  limit?: number;
  /** Labels must lie in [0, numClasses). */
  numClasses?: number;
  /** Expected image size, checked against the file (28×28 for (Fashion-)MNIST). */
  height?: number;
  width?: number;
  /** Names the files in error messages. */
  source?: string;
}

/** Checks that an IDX image array (N×H×W uint8) and label array (N uint8) agree, and converts them. */
export function imageDatasetFromIdx(images: IdxArray, labels: IdxArray, options: FromIdxOptions = {}): ImageDataset {
  const fail = (message: string): never => {
    throw new CorruptDatasetError(message, options.source);
  };
  if (images.dtype !== 'uint8' || images.shape.length !== 3) {
    fail(`images must be a rank-3 uint8 IDX array (N×H×W), got ${images.dtype} [${images.shape.join(', ')}]`);
  }
  if (labels.dtype !== 'uint8' || labels.shape.length !== 1) {
    fail(`labels must be a rank-1 uint8 IDX array, got ${labels.dtype} [${labels.shape.join(', ')}]`);
  }
  const [count, height, width] = images.shape;
  if (labels.shape[0] !== count) fail(`inconsistent counts: ${count} images but ${labels.shape[0]} labels`);
  if (options.height !== undefined && options.width !== undefined && (height !== options.height || width !== options.width)) {
    fail(`images are ${height}×${width}, expected ${options.height}×${options.width}`);
  }
  if (options.limit !== undefined && !(Number.isInteger(options.limit) && options.limit >= 0)) {
    throw new RangeError(`limit must be a non-negative integer, got ${options.limit}`);
  }
  const n = Math.min(count, options.limit ?? count);
  const pixels = height * width;
  const out = new Float32Array(n * pixels);
  const src = images.data;
  const scale = 1 / 255;
  for (let i = 0; i < n * pixels; i++) out[i] = src[i] * scale;
  const outLabels = new Int32Array(n);
  const numClasses = options.numClasses;
  for (let i = 0; i < n; i++) {
    const label = labels.data[i];
    if (numClasses !== undefined && label >= numClasses) fail(`label ${label} at example ${i} is not in [0, ${numClasses})`);
    outLabels[i] = label;
  }
  return { images: out, labels: outLabels, n, height, width };
}

/** The examples at `indices`, in that order (copies). */
export function selectExamples(dataset: ImageDataset, indices: ArrayLike<number>): ImageDataset {
  const pixels = dataset.height * dataset.width;
  const images = new Float32Array(indices.length * pixels);
  const labels = new Int32Array(indices.length);
  for (let row = 0; row < indices.length; row++) {
    const index = indices[row];
    if (!(index >= 0 && index < dataset.n)) throw new RangeError(`example index ${index} out of range [0, ${dataset.n})`);
    images.set(dataset.images.subarray(index * pixels, (index + 1) * pixels), row * pixels);
    labels[row] = dataset.labels[index];
  }
  return { images, labels, n: indices.length, height: dataset.height, width: dataset.width };
}

/**
 * `perClass` random example indices of each class (seeded), concatenated then shuffled: a class-balanced
 * subset, e.g. the clean meta set of the label-noise experiment.
 */
export function balancedIndices(labels: Int32Array, numClasses: number, perClass: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  labels.forEach((label, index) => byClass[label]?.push(index));
  const chosen: number[] = [];
  byClass.forEach((members, label) => {
    if (members.length < perClass) {
      throw new RangeError(`class ${label} has ${members.length} examples, fewer than the ${perClass} requested`);
    }
    rng.shuffle(members);
    chosen.push(...members.slice(0, perClass));
  });
  return Int32Array.from(rng.shuffle(chosen));
}

/** How many labels fall in each class (labels outside [0, numClasses) are ignored). */
export function labelHistogram(labels: ArrayLike<number>, numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (label >= 0 && label < numClasses) counts[label]++;
  }
  return counts;
}
