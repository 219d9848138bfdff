/** @file The real Fashion-MNIST files from Debian's dataset-fashion-mnist (required under CI; skipped with a warning locally when absent). */
import { existsSync } from 'node:fs';
import { expect, it } from 'vitest';
import { labelHistogram } from '../../packages/models/src/data/image-dataset';
import { FASHION_MNIST_MEAN, FASHION_MNIST_STD, downsample2x, meanStd } from '../../packages/models/src/data/transforms';
import { FASHION_MNIST_DIR, loadFashionMnist } from '../../packages/models/src/node';
import { describeWithPrerequisite } from '../helpers/prerequisite';

const present = existsSync(`${FASHION_MNIST_DIR}train-images-idx3-ubyte.gz`);
const missing = `Fashion-MNIST not in ${FASHION_MNIST_DIR} (sudo apt-get install dataset-fashion-mnist, or bash scripts/setup.sh)`;

describeWithPrerequisite('Fashion-MNIST (real files)', present, missing, () => {
  it('train: 60000 images in [0, 1], 6000 per class, statistics match the published constants', () => {
    const train = loadFashionMnist({ split: 'train' });
    expect(train.n).toBe(60000);
    expect(train.images.length).toBe(60000 * 28 * 28);
    expect(labelHistogram(train.labels, 10)).toEqual(new Array(10).fill(6000));
    let min = Infinity;
    let max = -Infinity;
    for (const v of train.images) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
    const { mean, std } = meanStd(train.images);
    expect(mean).toBeCloseTo(FASHION_MNIST_MEAN, 3);
    expect(std).toBeCloseTo(FASHION_MNIST_STD, 3);
    // The first training example is an ankle boot (class 9), the second a T-shirt (0) — a check on order.
    expect(Array.from(train.labels.subarray(0, 4))).toEqual([9, 0, 0, 3]);
  });

  it('test: 10000 images, 1000 per class; limit and downsampling compose', () => {
    const test = loadFashionMnist({ split: 'test' });
    expect(test.n).toBe(10000);
    expect(labelHistogram(test.labels, 10)).toEqual(new Array(10).fill(1000));
    const small = loadFashionMnist({ split: 'test', limit: 100 });
    expect(small.n).toBe(100);
    expect(Array.from(small.labels)).toEqual(Array.from(test.labels.subarray(0, 100)));
    const down = downsample2x(small.images, 28, 28);
    expect([down.height, down.width, down.images.length]).toEqual([14, 14, 100 * 196]);
  });
});
