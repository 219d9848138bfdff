/** @file Host transforms: rotation against torch's affine_grid + grid_sample, downsampling, normalisation, label noise. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../packages/models/src/data/random';
import { corruptLabels, downsample2x, meanStd, normalise, rotate, rotationTheta } from '../../packages/models/src/data/transforms';

interface RotationCase {
  height: number;
  width: number;
  angles: number[];
  images: number[];
  expected: number[];
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/rotation.json', import.meta.url), 'utf8')) as {
  cases: RotationCase[];
};

function randomImages(n: number, h: number, w: number, seed: number): Float32Array {
  return new Rng(seed).uniformArray(n * h * w);
}

/** out[i][j] = in[j][W−1−i]: numpy's rot90 (counter-clockwise as displayed) for a square image. */
function rot90ccw(image: Float32Array, size: number): Float32Array {
  const out = new Float32Array(size * size);
  for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) out[i * size + j] = image[j * size + (size - 1 - i)];
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

describe('rotate', () => {
  it('matches torch affine_grid + grid_sample (align_corners=False), square and non-square, per-image angles', () => {
    for (const c of fixture.cases) {
      const out = rotate(Float32Array.from(c.images), c.height, c.width, c.angles);
      expect(maxAbsDiff(out, c.expected), `${c.height}×${c.width} ${c.angles}`).toBeLessThan(1e-6);
    }
  });

  it('+90° is an exact transpose-flip (numpy rot90), −90° its inverse, 0° and 360° the identity', () => {
    for (const size of [4, 5, 28]) {
      const images = randomImages(3, size, size, size);
      const rotated = rotate(images, size, size, 90);
      const back = rotate(rotated, size, size, -90);
      for (let k = 0; k < 3; k++) {
        const image = images.subarray(k * size * size, (k + 1) * size * size);
        expect(maxAbsDiff(rotated.subarray(k * size * size, (k + 1) * size * size), rot90ccw(image, size))).toBeLessThan(1e-6);
      }
      expect(maxAbsDiff(back, images)).toBeLessThan(1e-6);
      expect(maxAbsDiff(rotate(images, size, size, 0), images)).toBe(0);
      expect(maxAbsDiff(rotate(images, size, size, 360), images)).toBeLessThan(1e-6);
      expect(maxAbsDiff(rotate(rotated, size, size, 90), rotate(images, size, size, 180))).toBeLessThan(1e-6);
    }
  });

  it('positive angles turn content counter-clockwise on screen (top-right → top-left)', () => {
    const size = 5;
    const image = new Float32Array(size * size);
    image[0 * size + 4] = 1; // top-right corner (row 0 is the top row)
    const out = rotate(image, size, size, 90);
    expect(out[0 * size + 0]).toBeCloseTo(1, 6);
    expect(out.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    // A small positive angle moves a dot right of centre upwards (smaller row index).
    const dot = new Float32Array(size * size);
    dot[2 * size + 4] = 1;
    const tilted = rotate(dot, size, size, 20);
    const upper = tilted.subarray(0, 2 * size).reduce((a, b) => a + b, 0);
    const lower = tilted.subarray(3 * size).reduce((a, b) => a + b, 0);
    expect(upper).toBeGreaterThan(lower);
  });

  it('rotationTheta is the affine_grid matrix [[cos, −sin, 0], [sin, cos, 0]]', () => {
    const theta = Array.from(rotationTheta(30));
    const expected = [Math.sqrt(3) / 2, -0.5, 0, 0.5, Math.sqrt(3) / 2, 0];
    theta.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 12));
  });

  it('rejects mismatched sizes and angle counts', () => {
    expect(() => rotate(new Float32Array(10), 3, 3, 10)).toThrow(/not a whole number of 3×3 images/);
    expect(() => rotate(new Float32Array(18), 3, 3, [1, 2, 3])).toThrow(/3 angles for 2 images/);
  });
});

describe('downsample2x', () => {
  it('averages each 2×2 block', () => {
    // 2 images 4×4 with known values.
    const images = Float32Array.from({ length: 32 }, (_, i) => i);
    const { images: out, height, width } = downsample2x(images, 4, 4);
    expect([height, width]).toEqual([2, 2]);
    // Block (0,0) of image 0: 0, 1, 4, 5 → 2.5; block (1,1): 10, 11, 14, 15 → 12.5; image 1 adds 16.
    expect(Array.from(out)).toEqual([2.5, 4.5, 10.5, 12.5, 18.5, 20.5, 26.5, 28.5]);
  });

  it('keeps the mean and rejects odd sizes', () => {
    const images = randomImages(4, 28, 28, 3);
    const { images: out } = downsample2x(images, 28, 28);
    expect(out.length).toBe(4 * 196);
    expect(meanStd(out).mean).toBeCloseTo(meanStd(images).mean, 6);
    expect(() => downsample2x(new Float32Array(9), 3, 3)).toThrow(/even sides/);
  });
});

describe('normalise', () => {
  it('(x − mean)/std gives zero mean, unit std when fitted on the data', () => {
    const images = randomImages(10, 8, 8, 1);
    const { mean, std } = meanStd(images);
    const z = meanStd(normalise(images, mean, std));
    expect(z.mean).toBeCloseTo(0, 6);
    expect(z.std).toBeCloseTo(1, 5);
    expect(() => normalise(images, 0, 0)).toThrow(/std must be positive/);
  });
});

describe('corruptLabels', () => {
  const n = 50000;
  const clean = Int32Array.from({ length: n }, (_, i) => i % 10);

  it('uniform noise at rate r changes about r·(C−1)/C of labels, spread evenly over the other classes', () => {
    const noisy = corruptLabels(clean, { kind: 'uniform', rate: 0.4, numClasses: 10, seed: 7 });
    let changed = 0;
    const transitions = new Array(10).fill(0);
    for (let i = 0; i < n; i++) {
      if (noisy[i] !== clean[i]) changed++;
      if (clean[i] === 0) transitions[noisy[i]]++;
    }
    expect(changed / n).toBeCloseTo(0.36, 2); // 0.4 · 9/10, ± ~0.002 std
    // Class 0 row of the empirical transition matrix ≈ 0.4·U + 0.6·I: 0.64 on the diagonal, 0.04 elsewhere.
    const rows = n / 10;
    expect(transitions[0] / rows).toBeGreaterThan(0.62);
    expect(transitions[0] / rows).toBeLessThan(0.66);
    for (let c = 1; c < 10; c++) {
      expect(transitions[c] / rows).toBeGreaterThan(0.03);
      expect(transitions[c] / rows).toBeLessThan(0.05);
    }
  });

  it('flip noise sends a fraction ≈ rate to (label + 1) mod C and nowhere else', () => {
    const noisy = corruptLabels(clean, { kind: 'flip', rate: 0.2, numClasses: 10, seed: 3 });
    let flipped = 0;
    for (let i = 0; i < n; i++) {
      if (noisy[i] !== clean[i]) {
        expect(noisy[i]).toBe((clean[i] + 1) % 10);
        flipped++;
      }
    }
    expect(flipped / n).toBeCloseTo(0.2, 2);
  });

  it('is reproducible from the seed, leaves the input alone, handles rate 0 and 1', () => {
    const copy = clean.slice();
    const a = corruptLabels(clean, { kind: 'uniform', rate: 0.4, numClasses: 10, seed: 11 });
    const b = corruptLabels(clean, { kind: 'uniform', rate: 0.4, numClasses: 10, seed: 11 });
    const c = corruptLabels(clean, { kind: 'uniform', rate: 0.4, numClasses: 10, seed: 12 });
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
    expect(Array.from(clean)).toEqual(Array.from(copy));
    expect(Array.from(corruptLabels(clean, { kind: 'flip', rate: 0, numClasses: 10, seed: 1 }))).toEqual(Array.from(clean));
    const all = corruptLabels(clean, { kind: 'flip', rate: 1, numClasses: 10, seed: 1 });
    expect(all.every((label, i) => label === (clean[i] + 1) % 10)).toBe(true);
    expect(() => corruptLabels([0, 12], { kind: 'flip', rate: 0.1, numClasses: 10, seed: 1 })).toThrow(/label 12 at 1/);
    expect(() => corruptLabels(clean, { kind: 'flip', rate: 1.5, numClasses: 10, seed: 1 })).toThrow(/rate must be in \[0, 1\]/);
  });
});
