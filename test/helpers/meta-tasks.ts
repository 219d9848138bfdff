/** @file Test fixture: small support/query regression tasks from number arrays (the A-MAML quadratic and tiny tanh MLP problems), and read-back helpers for comparing parameter trees. */
import { tensor, type Device, type Tensor } from '@metagrad/tensor';
import { matmul } from '@metagrad/autograd';
import { type MlpParams, type ParamTree, leaves, mlp } from '@metagrad/models';
import { mseRegressionProblem, type MetaProblem, type SupportQueryTask } from '@metagrad/meta';

/** A regression task: support inputs xs ([ys.length, d], row-major) with targets ys, query xq with targets yq. */
export function makeTask(device: Device, xs: number[], ys: number[], xq: number[], yq: number[], d: number): SupportQueryTask {
  return {
    support: {
      x: tensor(Float32Array.from(xs), [ys.length, d], 'f32', device),
      y: tensor(Float32Array.from(ys), [ys.length, 1], 'f32', device),
    },
    query: {
      x: tensor(Float32Array.from(xq), [yq.length, d], 'f32', device),
      y: tensor(Float32Array.from(yq), [yq.length, 1], 'f32', device),
    },
  };
}

/** Frees a task's four tensors. */
export const disposeTask = (t: SupportQueryTask): void => [t.support.x, t.support.y, t.query.x, t.query.y].forEach((x) => x.dispose());

/** A tree's leaves read back and concatenated in leaf order. */
export const flat = async (tree: ParamTree): Promise<number[]> => (await Promise.all(leaves(tree).map(async (t) => Array.from(await t.toArray())))).flat();

/** Relative L2 error ‖a − b‖ / ‖b‖. */
export const relErr = (a: number[], b: number[]): number => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0) / b.reduce((s, v) => s + v * v, 0));

/** The A-MAML quadratic: a linear model w ∈ R^3 under mean squared error, 5 support and 4 query points, θ₀ = theta. */
export const Q = {
  d: 3,
  xs: [0.9, -0.8, 0.5, 0.9, 0.1, -0.4, -0.6, 1.2, 0.2, 0.4, 0.4, -0.9, -1.1, -0.3, 0.8],
  ys: [0.5, -1.0, 0.3, 0.8, -0.2],
  xq: [0.6, 0.2, -0.5, -0.7, 0.9, 0.1, 0.2, -0.4, 0.6, -0.1, -0.8, -0.3],
  yq: [0.1, 0.7, -0.4, -0.6],
  theta: [0.2, -0.1, 0.4],
};
/** Q's task on `device`. */
export const quadraticTask = (device: Device): SupportQueryTask => makeTask(device, Q.xs, Q.ys, Q.xq, Q.yq, Q.d);
/** Q's θ₀ as a [d, 1] weight on `device`. */
export const quadraticTheta = (device: Device): { w: Tensor } => ({ w: tensor(Float32Array.from(Q.theta), [Q.d, 1], 'f32', device) });
/** The linear model x ↦ x w under mean squared error. */
export const linearProblem = mseRegressionProblem<{ w: Tensor }>((p, x) => matmul(x, p.w));

/**
 * A 2-4-1 tanh MLP (init seed 7) on y = sin(3 x₀) + x₁², 6 support and 4 query points: θ, task and problem on
 * `device` (θ and task are the caller's to dispose).
 */
export function tinyTanhMlp(device: Device): { theta: MlpParams; task: SupportQueryTask; problem: MetaProblem<MlpParams, SupportQueryTask> } {
  const model = mlp({ sizes: [2, 4, 1], activation: 'tanh' });
  const theta: MlpParams = model.init(7, device);
  const xs = [0.9, -0.3, -0.7, 0.5, 0.2, 0.8, -0.9, -0.6, 0.4, 0.1, -0.2, -0.8];
  const xq = [0.6, 0.4, -0.5, -0.1, 0.3, -0.7, -0.8, 0.9];
  const target = (x: number[]): number[] => Array.from({ length: x.length / 2 }, (_, i) => Math.sin(3 * x[2 * i]) + x[2 * i + 1] ** 2);
  const task = makeTask(device, xs, target(xs), xq, target(xq), 2);
  return { theta, task, problem: mseRegressionProblem<MlpParams>((p, x) => model.apply(p, x)) };
}
