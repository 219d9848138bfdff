import { describe, expect, it } from 'vitest';
import { ShapeError } from '../../packages/tensor/src/errors';
import { affineGrid, gridSample, gridSampleGridGrad, gridSampleInputGrad } from '../../packages/tensor/src/reference/index';
import { T, dot, expectClose, expectRelClose, rand } from './helpers';

const identity = (n: number) => T(Array.from({ length: n }, () => [1, 0, 0, 0, 1, 0]).flat(), [n, 2, 3]);

describe('affineGrid', () => {
  it('identity theta gives pixel centers (alignCorners=false) or corners (true)', () => {
    const g = affineGrid(identity(1), [1, 3, 2, 3], false);
    expect(g.shape).toEqual([1, 2, 3, 2]);
    expectClose(g, T([-2 / 3, -0.5, 0, -0.5, 2 / 3, -0.5, -2 / 3, 0.5, 0, 0.5, 2 / 3, 0.5], [1, 2, 3, 2]));
    const ga = affineGrid(identity(1), [1, 1, 2, 3], true);
    expectClose(ga, T([-1, -1, 0, -1, 1, -1, -1, 1, 0, 1, 1, 1], [1, 2, 3, 2]));
    const t = T([0, 1, 0.5, 2, 0, -1], [1, 2, 3]);
    const gt = affineGrid(t, [1, 1, 1, 2], true);
    // W=2: x ∈ {−1, 1}; H=1: y = 0 → (0·x + 1·0 + 0.5, 2x − 1)
    expectClose(gt, T([0.5, -3, 0.5, 1], [1, 1, 2, 2]));
    expect(() => affineGrid(T([1, 2, 3], [1, 3]), [1, 1, 2, 2])).toThrow(ShapeError);
  });
});

describe('gridSample', () => {
  it('identity grid reproduces the input in both modes', () => {
    const x = rand([2, 3, 4, 5], 1);
    for (const alignCorners of [false, true]) {
      const g = affineGrid(identity(2), x.shape, alignCorners);
      expectClose(gridSample(x, g, { alignCorners }), x, 1e-12, 1e-12);
    }
  });

  it('hand-computed bilinear and zero padding', () => {
    const x = T([1, 2, 3, 4], [1, 1, 2, 2]);
    // alignCorners: (0,0) is the center → mean; (−1,−1) is x[0,0]; (−3, 0) and (1, −3) are out of range → 0
    const g = T([0, 0, -1, -1, -3, 0, 1, -3], [1, 1, 4, 2]);
    expect([...gridSample(x, g, { alignCorners: true }).data]).toEqual([2.5, 1, 0, 0]);
    // alignCorners=false: (−1,−1) is the outer corner → pixel (−0.5,−0.5): only x[0,0] with weight 1/4
    expect(gridSample(x, T([-1, -1], [1, 1, 1, 2]), { alignCorners: false }).data[0]).toBeCloseTo(0.25, 15);
  });

  it.each([false, true])('input grad is the adjoint (alignCorners=%s)', (alignCorners) => {
    const x = rand([2, 3, 5, 4], 2);
    const grid = { shape: [2, 3, 6, 2], data: rand([2, 3, 6, 2], 3).data.map((v) => 1.3 * v) };
    const y = gridSample(x, grid, { alignCorners });
    const gy = rand(y.shape, 4);
    expectRelClose(dot(y, gy), dot(x, gridSampleInputGrad(gy, grid, x.shape, { alignCorners })), 1e-12);
  });

  it.each([false, true])('grid grad matches central differences (alignCorners=%s)', (alignCorners) => {
    const x = rand([2, 2, 5, 4], 5);
    const grid = { shape: [2, 3, 3, 2], data: rand([2, 3, 3, 2], 6).data.map((v) => 1.2 * v) };
    const gy = rand([2, 2, 3, 3], 7);
    const gg = gridSampleGridGrad(gy, x, grid, { alignCorners });
    const h = 1e-6;
    for (let i = 0; i < grid.data.length; i++) {
      const at = (d: number) => {
        const g = { shape: grid.shape, data: grid.data.slice() };
        g.data[i] += d;
        return dot(gridSample(x, g, { alignCorners }), gy);
      };
      const fd = (at(h) - at(-h)) / (2 * h);
      expect(Math.abs(fd - gg.data[i])).toBeLessThan(1e-6);
    }
  });
});
