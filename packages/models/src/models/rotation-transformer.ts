/**
 * @file RotationTransformer: one learnable angle (radians) rotates an image batch by affine grid + bilinear
 * sampling (zeros outside, align_corners = false), differentiable twice in the angle.
 */
import { affineGrid, concat, cos, expand, gridSample, neg, reshape, sin } from '@metagrad/autograd';
import * as raw from '@metagrad/tensor';
import { InvalidArgumentError, ShapeError, type Tensor, tidy } from '@metagrad/tensor';
import type { Model } from './model';

/** angle: [1], radians. */
export type RotationParams = { readonly angle: Tensor };

export interface RotationTransformerOptions {
  /** Starting angle in radians (default 0: the identity). */
  initialAngle?: number;
}

/** θ = [[cos a, −sin a, 0], [sin a, cos a, 0]] as a differentiable [1, 2, 3] tensor (torch's rotation convention). */
export function rotationMatrix(angle: Tensor): Tensor {
  if (angle.size !== 1) throw new ShapeError(`rotationMatrix: angle must hold one value, got [${angle.shape.join(', ')}]`);
  return tidy(() => {
    const a = reshape(angle, [1]);
    const c = cos(a);
    const s = sin(a);
    const zero = raw.zeros([1], 'f32', angle.device);
    return reshape(concat([c, neg(s), zero, s, c, zero], 0), [1, 2, 3]);
  });
}

export function rotationTransformer(options: RotationTransformerOptions = {}): Model<RotationParams> {
  const initialAngle = options.initialAngle ?? 0;
  if (!Number.isFinite(initialAngle)) throw new InvalidArgumentError(`rotationTransformer: initialAngle must be finite, got ${initialAngle}`);
  return {
    init(_seed, device) {
      return { angle: raw.tensor([initialAngle], [1], 'f32', device) };
    },
    apply(params, x) {
      if (x.rank !== 4) throw new ShapeError(`rotationTransformer: input must be [N, C, H, W], got [${x.shape.join(', ')}]`);
      return tidy(() => {
        const theta = expand(rotationMatrix(params.angle), [x.shape[0], 2, 3]);
        return gridSample(x, affineGrid(theta, x.shape, false), { alignCorners: false });
      });
    },
  };
}
