/** @file E7's meta-test adaptation of all test tasks at once: their regressors stacked along a task dim, one GD step for all. */
import { add, axpby, concat, expand, grad, matmul, mean, noGrad, reshape, square, sub, sum, tanh } from '@metagrad/autograd';
import { InvalidArgumentError, type Tensor, tidy } from '@metagrad/tensor';
import type { MlpParams, RegressionScaling } from '@metagrad/models';
import { type DeviceTask, nrmseFromScaledMse } from './amaml-common';

/** One layer of B stacked regressors: weight [B, out, in], bias [B, 1, out]. */
interface StackedLayer {
  weight: Tensor;
  bias: Tensor;
}

const stackRows = (ts: readonly Tensor[]): Tensor =>
  concat(
    ts.map((t) => reshape(t, [1, ...t.shape])),
    0,
  );

/** f_k(x_k) for every task k at once: x [B, n, in] → [B, n, out], tanh after the hidden layers (the tanh regressor). */
function applyStacked(layers: readonly StackedLayer[], x: Tensor): Tensor {
  return tidy(() => {
    let h = x;
    layers.forEach((l, i) => {
      h = add(matmul(h, l.weight, { transB: true }), l.bias);
      if (i < layers.length - 1) h = tanh(h);
    });
    return h;
  });
}

/** Each task's mean squared error [B]; their sum's gradient with respect to task k's layers is task k's own gradient. */
const perTaskMse = (layers: readonly StackedLayer[], x: Tensor, y: Tensor): Tensor => tidy(() => mean(square(sub(applyStacked(layers, x), y)), [1, 2]));

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
  const data = tidy(() => ({
    sx: stackRows(tests.map((t) => t.support.x)),
    sy: stackRows(tests.map((t) => t.support.y)),
    qx: stackRows(tests.map((t) => t.query.x)),
    qy: stackRows(tests.map((t) => t.query.y)),
  }));
  let layers: StackedLayer[] = noGrad(() =>
    theta.map((p) => {
      if (!('bias' in p) || !p.bias)
        throw new InvalidArgumentError(`adaptAllTasks: every layer needs a bias (the tanh regressor's do), got layer keys ${Object.keys(p).join(', ')}`);
      const [out, inp] = p.weight.shape;
      return tidy(() => ({
        weight: add(expand(reshape(p.weight, [1, out, inp]), [B, out, inp]), 0),
        bias: add(expand(reshape(p.bias, [1, 1, out]), [B, 1, out]), 0),
      }));
    }),
  );
  const gradient = grad((ls: StackedLayer[]) => sum(perTaskMse(ls, data.sx, data.sy)));
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
      const next = tidy(() => {
        const g = gradient(layers);
        return noGrad(() => layers.map((l, i) => ({ weight: axpby(1, l.weight, -o.innerLr, g[i].weight), bias: axpby(1, l.bias, -o.innerLr, g[i].bias) })));
      });
      for (const l of layers) {
        l.weight.dispose();
        l.bias.dispose();
      }
      layers = next;
    }
  } finally {
    for (const l of layers) {
      l.weight.dispose();
      l.bias.dispose();
    }
    for (const t of Object.values(data)) t.dispose();
  }
  const perStep = o.evalAt.map((k) => byStep.get(k)!);
  return { curve: perStep.map((v) => v.reduce((s, x) => s + x, 0) / B), perTask: perStep[perStep.length - 1] };
}
