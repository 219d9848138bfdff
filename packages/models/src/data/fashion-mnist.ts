/**
 * @file Node-only Fashion-MNIST loader: reads the gzipped (or plain) IDX files that Debian's
 * `dataset-fashion-mnist` package installs, with named errors for missing and corrupt files.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateIdxGzip } from './idx-gzip';
import { DatasetNotFoundError, FASHION_MNIST_PACKAGE } from './errors';
import { type ImageDataset, imageDatasetFromIdx } from './image-dataset';
import { type IdxArray, parseIdx } from './idx';

/** Where `sudo apt-get install dataset-fashion-mnist` puts the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist/';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

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
  const missing = [
    imagesPath === null ? `${stems.images}.gz` : null,
    labelsPath === null ? `${stems.labels}.gz` : null,
  ].filter((name): name is string => name !== null);
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
  const raw = readFileSync(path);
  const bytes = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  return parseIdx(maybeGunzip(bytes, path), path);
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
