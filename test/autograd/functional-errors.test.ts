/** @file vjp / jvp / HvpOperator / jacobian free what they made when they throw (bad cotangents, bad f). */
import { describe, it, expect } from 'vitest';
import * as raw from '@metagrad/tensor/raw';
import { ShapeError, type Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { useDevice } from '../helpers/device';

const device = useDevice();
const t = (data: number[]) => raw.tensor(data, [data.length], 'f32', device());

function expectThrowsWithoutLeaks(fn: () => unknown, error: unknown): void {
  const before = ag.memory(device());
  expect(fn).toThrow(error as never);
  ag.assertNoLeaks(device(), before, 'failed call');
}

describe('functional transforms clean up on errors', () => {
  const square = (z: Tensor) => ag.mul(z, z);
  const onceCube = ag.customVjp(
    (z: Tensor) => ({ output: raw.mul(raw.mul(z, z), z) }),
    (gy, { inputs: [z] }) => [raw.mul(gy, raw.mulScalar(raw.square(z), 3))],
    { name: 'onceCube' },
  );

  it('vjp with a cotangent of the wrong shape', () => {
    const x = t([1, 2, 3]);
    const bad = t([1, 2]);
    expectThrowsWithoutLeaks(() => ag.vjp(square, [x], bad), ShapeError);
    raw.dispose([x, bad]);
  });

  it('jvp through a once-differentiable customVjp', () => {
    const x = t([1, 2]);
    const v = t([1, 1]);
    expectThrowsWithoutLeaks(() => ag.jvp(onceCube, [x], [v]), ag.NotTwiceDifferentiableError);
    raw.dispose([x, v]);
  });

  it('HvpOperator of a function that is not scalar', () => {
    const x = t([1, 2]);
    expectThrowsWithoutLeaks(() => new ag.HvpOperator(square, [x]), ShapeError);
    raw.dispose([x]);
  });

  it('jacobian of a function that throws', () => {
    const x = t([1, 2]);
    expectThrowsWithoutLeaks(() => ag.jacobian((z) => ag.reshape(z, [3]), x), ShapeError);
    raw.dispose([x]);
  });
});
