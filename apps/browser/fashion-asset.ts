/**
 * @file Build-time preparation of the rotation demo's data: a class-balanced Fashion-MNIST subset from Debian's
 * dataset-fashion-mnist, written as one uint8 IDX file (row = label byte + 28×28 pixels) plus a JSON manifest.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { balancedIndices, encodeIdx } from '@metagrad/models';
import { FASHION_MNIST_CLASSES, loadFashionMnist } from '@metagrad/models/node';

/** Examples per class: train and validation come from the training split (disjoint), test from the test split. */
export const SUBSET_SIZES = { trainPerClass: 120, valPerClass: 30, testPerClass: 50 } as const;
export const FASHION_ASSET = 'fashion-subset.idx';
export const FASHION_MANIFEST = 'fashion-subset.json';

export interface FashionManifest {
  file: string;
  height: number;
  width: number;
  classes: string[];
  /** [start, end) row ranges of the asset. */
  splits: { train: [number, number]; val: [number, number]; test: [number, number] };
  bytes: number;
}

/** Writes the asset and manifest into `outDir`; throws DatasetNotFoundError when the Debian package is missing. */
export function writeFashionAsset(outDir: string, dir?: string, seed = 7): FashionManifest {
  const train = loadFashionMnist({ split: 'train', dir });
  const test = loadFashionMnist({ split: 'test', dir });
  const perTrainClass = SUBSET_SIZES.trainPerClass + SUBSET_SIZES.valPerClass;
  // Balanced draw of train+val per class, then split each class's draw so both parts stay balanced.
  const drawn = balancedIndices(train.labels, 10, perTrainClass, seed);
  const seen = new Array<number>(10).fill(0);
  const trainRows: number[] = [];
  const valRows: number[] = [];
  for (const index of drawn) {
    const label = train.labels[index];
    (seen[label]++ < SUBSET_SIZES.trainPerClass ? trainRows : valRows).push(index);
  }
  const testRows = Array.from(balancedIndices(test.labels, 10, SUBSET_SIZES.testPerClass, seed + 1));
  const pixels = train.height * train.width;
  const rows = trainRows.length + valRows.length + testRows.length;
  const data = new Uint8Array(rows * (pixels + 1));
  let row = 0;
  const put = (source: typeof train, index: number): void => {
    const offset = row++ * (pixels + 1);
    data[offset] = source.labels[index];
    const image = source.images.subarray(index * pixels, (index + 1) * pixels);
    for (let p = 0; p < pixels; p++) data[offset + 1 + p] = Math.round(image[p] * 255);
  };
  for (const index of trainRows) put(train, index);
  for (const index of valRows) put(train, index);
  for (const index of testRows) put(test, index);
  const bytes = encodeIdx({ dtype: 'uint8', shape: [rows, pixels + 1], data });
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, FASHION_ASSET), bytes);
  const a = trainRows.length;
  const b = a + valRows.length;
  const manifest: FashionManifest = {
    file: FASHION_ASSET,
    height: train.height,
    width: train.width,
    classes: [...FASHION_MNIST_CLASSES],
    splits: { train: [0, a], val: [a, b], test: [b, rows] },
    bytes: bytes.length,
  };
  writeFileSync(join(outDir, FASHION_MANIFEST), JSON.stringify(manifest, null, 2));
  return manifest;
}
