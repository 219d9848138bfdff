/** @file E7's meta-test adaptation of all test tasks at once: their regressors stacked along a task dim, one GD step for all. */
import { add, concat, expand, grad, mean, noGrad, reshape, square, sub, sum } from '@metagrad/autograd';
import { type Tensor, tidy } from '@metagrad/tensor';
import { type MlpParams, type RegressionScaling, axpyTree, disposeTree } from '@metagrad/models';
import { batchedMlp } from '@metagrad/meta';
import { type DeviceTask, nrmseFromScaledMse } from './amaml-common';

const stackRows = (ts: readonly Tensor[]): Tensor =>
  concat(
    ts.map((t) => reshape(t, [1, ...t.shape])),
    0,
  );

/** θ's layers repeated B times: weight [B, out, in], bias [B, out] (batchedMlp's stacked layout). */
const stacked = (theta: MlpParams, B: number): MlpParams =>
  tidy(() =>
    noGrad(
      () =>
        theta.map((layer) =>
          Object.fromEntries(Object.entries(layer).map(([k, t]) => [k, add(expand(reshape(t, [1, ...t.shape]), [B, ...t.shape]), 0)])),
        ) as MlpParams,
    ),
  );

/**
 * The same numbers as running `adapt` (plain GD from θ on each task's support set) task by task, in one batched
 * run: B tasks cost the dispatches of one, which turns E7's meta-test from minutes per panel into seconds. Every
 * task must have the same support and query sizes (E7's do). Returns the mean test nRMSE over tasks at each of
 * `evalAt` and every task's at the last step.
 */
export async function adaptAllTasks(
  theta: MlpParams,
  tests: readonly DeviceTask[],
  o: { steps: number; innerLr: number; evalAt: readonly number[]; scaling: RegressionScaling },
): Promise<{ curve: number[]; perTask: number[] }> {
  const B = tests.length;
  // f_k(x_k) for every task k at once, x [B, n, in] → [B, n, out]: the regressor's own layer sizes and tanh.
  const apply = batchedMlp({ sizes: [theta[0].weight.shape[1], ...theta.map((l) => l.weight.shape[0])], activation: 'tanh' });
  /** Each task's mean squared error [B]; their sum's gradient with respect to task k's layers is task k's own gradient. */
  const perTaskMse = (layers: MlpParams, x: Tensor, y: Tensor): Tensor => tidy(() => mean(square(sub(apply(layers, x), y)), [1, 2]));
  const data = tidy(() => ({
    sx: stackRows(tests.map((t) => t.support.x)),
    sy: stackRows(tests.map((t) => t.support.y)),
    qx: stackRows(tests.map((t) => t.query.x)),
    qy: stackRows(tests.map((t) => t.query.y)),
  }));
  let layers = stacked(theta, B);
  const gradient = grad((ls: MlpParams) => sum(perTaskMse(ls, data.sx, data.sy)));
  const want = new Set(o.evalAt);
  const byStep = new Map<number, number[]>();
  try {
    for (let k = 0; ; k++) {
      if (want.has(k)) {
        const mse = noGrad(() => perTaskMse(layers, data.qx, data.qy));
        const values = Array.from(await mse.toArray());
        mse.dispose();
        byStep.set(
          k,
          values.map((v, i) => nrmseFromScaledMse(v, tests[i], o.scaling)),
        );
      }
      if (k === o.steps) break;
      const next = tidy(() => noGrad(() => axpyTree(-o.innerLr, gradient(layers), layers)));
      disposeTree(layers);
      layers = next;
    }
  } finally {
    disposeTree(layers);
    disposeTree(Object.values(data));
  }
  const perStep = o.evalAt.map((k) => byStep.get(k)!);
  return { curve: perStep.map((v) => v.reduce((s, x) => s + x, 0) / B), perTask: perStep[perStep.length - 1] };
}
