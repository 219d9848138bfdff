/** @file Several scalars in one readback, so the trainers' finite checks ride on reads they already make. */
import { scope, type Tensor } from '@metagrad/tensor';
import { concat, reshape } from '@metagrad/tensor/raw';
import { noGrad } from '@metagrad/autograd';
import { normTree, type ParamTree } from '@metagrad/models';

/** Scalar tensors' values in one readback (concatenated on the device); the scalars stay the caller's. */
export function readScalars(scalars: readonly Tensor[]): Promise<number[]> {
  return scope(async () =>
    Array.from(
      await noGrad(() =>
        concat(
          scalars.map((t) => reshape(t, [1])),
          0,
        ),
      ).toArray(),
    ),
  );
}

/** [loss, ‖tree‖] in one readback, the norm reduced on the device; `loss` and `tree` stay the caller's. */
export function readWithNorm(loss: Tensor, tree: ParamTree): Promise<[number, number]> {
  return scope(async () => {
    const [value, treeNorm] = await readScalars([loss, noGrad(() => normTree(tree))]);
    return [value, treeNorm];
  });
}
