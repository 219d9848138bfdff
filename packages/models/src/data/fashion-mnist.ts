/**
 * @file Node-only Fashion-MNIST loader: reads the gzipped (or plain) IDX files that Debian's
 * `dataset-fashion-mnist` package installs, with named errors for missing and corrupt files.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { inflateIdxGzip } from './idx-gzip';
import { CorruptDatasetError, DatasetNotFoundError, FASHION_MNIST_PACKAGE } from './errors';
import { type ImageDataset, imageDatasetFromIdx } from './image-dataset';
import { type IdxArray, MAX_IDX_HEADER_BYTES, parseIdx, readIdxHeader } from './idx';

/** Where `sudo apt-get install dataset-fashion-mnist` puts the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist/';

export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'] as const;

const FILE_STEMS = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
} as const;

export interface LoadFashionMnistOptions {
  /** Directory holding the IDX files; defaults to FASHION_MNIST_DIR. */
  dir?: string;
  split: 'train' | 'test';
  /** Keep only the first `limit` examples. */
  limit?: number;
}

/** Loads one split as N×28×28 float32 images in [0, 1] and int32 labels in [0, 10). */
export function loadFashionMnist(options: LoadFashionMnistOptions): ImageDataset {
  const dir = options.dir ?? FASHION_MNIST_DIR;
  // hasOwn, not a lookup: split 'toString' must not find Object.prototype.toString.
  const stems = Object.hasOwn(FILE_STEMS, options.split) ? FILE_STEMS[options.split] : undefined;
  if (stems === undefined) throw new RangeError(`loadFashionMnist: split must be 'train' or 'test', got ${String(options.split)}`);
  const imagesPath = findIdxFile(dir, stems.images);
  const labelsPath = findIdxFile(dir, stems.labels);
  const missing = [imagesPath === null ? `${stems.images}.gz` : null, labelsPath === null ? `${stems.labels}.gz` : null].filter(
    (name): name is string => name !== null,
  );
  if (imagesPath === null || labelsPath === null) {
    throw new DatasetNotFoundError(
      'Fashion-MNIST',
      dir,
      missing,
      `Install it with \`sudo apt-get install ${FASHION_MNIST_PACKAGE}\` (files go to ${FASHION_MNIST_DIR}), ` +
        'or pass { dir } pointing at a folder with the IDX files (gzipped or not).',
    );
  }
  return imageDatasetFromIdx(readIdxFile(imagesPath), readIdxFile(labelsPath), {
    limit: options.limit,
    numClasses: FASHION_MNIST_CLASSES.length,
    height: 28,
    width: 28,
    source: `${imagesPath} + ${labelsPath}`,
  });
}

/** Reads an IDX file from disk, gunzipping it when it starts with the gzip magic (whatever its name). */
export function readIdxFile(path: string): IdxArray {
  checkSizeBeforeReading(path);
  const raw = readFileSync(path);
  const bytes = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  return parseIdx(maybeGunzip(bytes, path), path);
}

/** Node's readFileSync refuses files over 2 GiB with a raw RangeError; no valid IDX file of ours is near that. */
const MAX_IDX_FILE_BYTES = 2 ** 31 - 1;

/**
 * Rejects, from the file size and the first bytes alone, a file too large to read or a plain IDX file whose size
 * disagrees with its header, so a corrupt multi-gigabyte file is not read into memory first.
 */
function checkSizeBeforeReading(path: string): void {
  const size = statSync(path).size;
  const head = new Uint8Array(Math.min(size, MAX_IDX_HEADER_BYTES));
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const gzipped = head[0] === 0x1f && head[1] === 0x8b;
  if (!gzipped) {
    const header = readIdxHeader(head, path);
    if (header !== null && header.totalBytes !== size) {
      const { shape, dtype, totalBytes } = header;
      throw new CorruptDatasetError(`IDX size mismatch: shape [${shape.join(', ')}] of ${dtype} needs ${totalBytes} bytes, file has ${size}`, path);
    }
  }
  if (size > MAX_IDX_FILE_BYTES)
    throw new CorruptDatasetError(`file is ${size} bytes, more than the ${MAX_IDX_FILE_BYTES} bytes an IDX file may have here`, path);
}

function maybeGunzip(bytes: Uint8Array, path: string): Uint8Array {
  if (!(bytes[0] === 0x1f && bytes[1] === 0x8b)) return bytes;
  return inflateIdxGzip(bytes, path);
}

/** The gzipped file if present, else the plain one, else null. */
function findIdxFile(dir: string, stem: string): string | null {
  for (const name of [`${stem}.gz`, stem]) {
    const path = join(dir, name);
    if (existsSync(path)) return path;
  }
  return null;
}
