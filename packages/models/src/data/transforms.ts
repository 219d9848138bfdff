/**
 * @file Host-side image and label transforms on row-major N×H×W Float32Array batches: normalisation,
 * rotation (the torch affine_grid + grid_sample convention), 2×2 average-pool downsampling, label noise.
 */
import { Rng } from './random';

/** Mean and standard deviation of the Fashion-MNIST training pixels in [0, 1] (measured over all 60000). */
export const FASHION_MNIST_MEAN = 0.286;
export const FASHION_MNIST_STD = 0.353;

/** (x − mean) / std into a new array. */
export function normalise(images: Float32Array, mean: number, std: number): Float32Array {
  if (!(std > 0)) throw new RangeError(`normalise: std must be positive, got ${std}`);
  const out = new Float32Array(images.length);
  const inverse = 1 / std;
  for (let i = 0; i < images.length; i++) out[i] = (images[i] - mean) * inverse;
  return out;
}

/** Mean and (population) standard deviation over all values, accumulated in float64. */
export function meanStd(values: ArrayLike<number>): { mean: number; std: number } {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  const mean = sum / values.length;
  let squares = 0;
  for (let i = 0; i < values.length; i++) squares += (values[i] - mean) ** 2;
  return { mean, std: Math.sqrt(squares / values.length) };
}

/**
 * The 2×3 affine matrix θ (row-major) for torch.nn.functional.affine_grid that rotates an image by
 * `angleDegrees` counter-clockwise as displayed (row 0 at the top): θ = [[cos, −sin, 0], [sin, cos, 0]].
 * affine_grid maps each *output* location p to the *input* location θ·p in normalised (x right, y down)
 * coordinates, so the content moves by θ⁻¹: a rotation by −a in y-down coordinates, which is +a
 * counter-clockwise on screen. The GPU RotationTransformer should build its grid from this same matrix.
 */
export function rotationTheta(angleDegrees: number): Float64Array {
  const radians = (angleDegrees * Math.PI) / 180;
  const c = Math.cos(radians);
  const s = Math.sin(radians);
  return Float64Array.of(c, -s, 0, s, c, 0);
}

/**
 * Rotates each H×W image by an angle in degrees (one for all, or one per image), counter-clockwise as
 * displayed, with bilinear sampling and zero fill outside the source: exactly
 * grid_sample(x, affine_grid(rotationTheta(a), align_corners=False), 'bilinear', 'zeros', align_corners=False).
 * Like torch, the rotation acts on normalised coordinates, so a non-square image is rotated anisotropically.
 */
export function rotate(images: Float32Array, height: number, width: number, angleDegrees: number | ArrayLike<number>): Float32Array {
  const pixels = checkBatch(images, height, width, 'rotate');
  const n = images.length / pixels;
  if (typeof angleDegrees !== 'number' && angleDegrees.length !== n) {
    throw new RangeError(`rotate: ${angleDegrees.length} angles for ${n} images`);
  }
  const out = new Float32Array(images.length);
  for (let image = 0; image < n; image++) {
    const angle = typeof angleDegrees === 'number' ? angleDegrees : angleDegrees[image];
    const [c, negS, , s] = rotationTheta(angle);
    const src = images.subarray(image * pixels, (image + 1) * pixels);
    const base = image * pixels;
    for (let i = 0; i < height; i++) {
      const y = (2 * i + 1) / height - 1; // pixel centre, align_corners=False
      for (let j = 0; j < width; j++) {
        const x = (2 * j + 1) / width - 1;
        const gx = c * x + negS * y;
        const gy = s * x + c * y;
        const ix = ((gx + 1) * width - 1) / 2;
        const iy = ((gy + 1) * height - 1) / 2;
        out[base + i * width + j] = bilinearZeros(src, height, width, ix, iy);
      }
    }
  }
  return out;
}

/** Bilinear interpolation at pixel coordinates (ix, iy); corners outside the image contribute zero. */
function bilinearZeros(src: Float32Array, height: number, width: number, ix: number, iy: number): number {
  const x0 = Math.floor(ix);
  const y0 = Math.floor(iy);
  const fx = ix - x0;
  const fy = iy - y0;
  let value = 0;
  for (let dy = 0; dy <= 1; dy++) {
    const row = y0 + dy;
    if (row < 0 || row >= height) continue;
    const wy = dy === 0 ? 1 - fy : fy;
    for (let dx = 0; dx <= 1; dx++) {
      const col = x0 + dx;
      if (col < 0 || col >= width) continue;
      const wx = dx === 0 ? 1 - fx : fx;
      value += wy * wx * src[row * width + col];
    }
  }
  return value;
}

/** Halves both sides by 2×2 average pooling (28×28 → 14×14); H and W must be even. */
export function downsample2x(images: Float32Array, height: number, width: number): { images: Float32Array; height: number; width: number } {
  const pixels = checkBatch(images, height, width, 'downsample2x');
  if (height % 2 !== 0 || width % 2 !== 0) throw new RangeError(`downsample2x: ${height}×${width} must have even sides`);
  const n = images.length / pixels;
  const outHeight = height / 2;
  const outWidth = width / 2;
  const out = new Float32Array(n * outHeight * outWidth);
  let o = 0;
  for (let image = 0; image < n; image++) {
    const base = image * pixels;
    for (let i = 0; i < outHeight; i++) {
      const top = base + 2 * i * width;
      for (let j = 0; j < outWidth; j++) {
        const a = top + 2 * j;
        out[o++] = 0.25 * (images[a] + images[a + 1] + images[a + width] + images[a + width + 1]);
      }
    }
  }
  return { images: out, height: outHeight, width: outWidth };
}

function checkBatch(images: Float32Array, height: number, width: number, op: string): number {
  if (!(Number.isInteger(height) && Number.isInteger(width) && height > 0 && width > 0)) {
    throw new RangeError(`${op}: image size must be positive integers, got ${height}×${width}`);
  }
  const pixels = height * width;
  if (images.length % pixels !== 0) throw new RangeError(`${op}: ${images.length} values are not a whole number of ${height}×${width} images`);
  return pixels;
}

export interface LabelNoiseOptions {
  /**
   * 'uniform': with probability `rate` the label is replaced by a class drawn uniformly from all C classes,
   * possibly the true one (the C = rate·U + (1 − rate)·I corruption matrix of Meta-Weight-Net), so the
   * fraction actually changed is rate·(C − 1)/C. 'flip': with probability `rate` the label becomes the fixed
   * other class (label + 1) mod C.
   */
  kind: 'uniform' | 'flip';
  rate: number;
  numClasses: number;
  seed: number;
}

/** A noisy copy of the labels; the originals are untouched (keep them to measure which examples were hit). */
export function corruptLabels(labels: ArrayLike<number>, options: LabelNoiseOptions): Int32Array {
  const { kind, rate, numClasses, seed } = options;
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`corruptLabels: rate must be in [0, 1], got ${rate}`);
  if (!(Number.isInteger(numClasses) && numClasses >= 2)) {
    throw new RangeError(`corruptLabels: numClasses must be an integer ≥ 2, got ${numClasses}`);
  }
  const rng = new Rng(seed);
  const out = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (!(Number.isInteger(label) && label >= 0 && label < numClasses)) {
      throw new RangeError(`corruptLabels: label ${label} at ${i} is not in [0, ${numClasses})`);
    }
    // Two draws per example whatever happens, so the same seed hits the same examples for every kind and rate.
    const hit = rng.next() < rate;
    const replacement = rng.int(numClasses);
    if (!hit) out[i] = label;
    else out[i] = kind === 'uniform' ? replacement : (label + 1) % numClasses;
  }
  return out;
}
