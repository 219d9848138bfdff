/** @file Several scalars in one readback, so the trainers' finite checks ride on reads they already make. */
import { concat, reshape, type Tensor } from '@metagrad/tensor';
import { noGrad } from '@metagrad/autograd';
import { normTree, type ParamTree } from '@metagrad/models';

/** Scalar tensors' values in one readback (concatenated on the device); the scalars stay the caller's. */
export async function readScalars(scalars: readonly Tensor[]): Promise<number[]> {
  const columns = scalars.map((t) => reshape(t, [1]));
  try {
    const joined = noGrad(() => concat(columns, 0));
    try {
      return Array.from(await joined.toArray());
    } finally {
      joined.dispose();
    }
  } finally {
    columns.forEach((t) => t.dispose());
  }
}

/** [loss, ‖tree‖] in one readback, the norm reduced on the device; `loss` and `tree` stay the caller's. */
export async function readWithNorm(loss: Tensor, tree: ParamTree): Promise<[number, number]> {
  const norm = noGrad(() => normTree(tree));
  try {
    const [value, treeNorm] = await readScalars([loss, norm]);
    return [value, treeNorm];
  } finally {
    norm.dispose();
  }
}
