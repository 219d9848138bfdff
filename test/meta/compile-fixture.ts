/** @file Test fixture: a tanh 1-16-16-1 regression meta-problem with three sine tasks (support/query of 10 points each). */
import { tensor, type Device } from '@metagrad/tensor';
import { disposeTree, mlp, type MlpParams } from '@metagrad/models';
import { mseRegressionProblem, type SupportQueryTask } from '@metagrad/meta';

const model = mlp({ sizes: [1, 16, 16, 1], activation: 'tanh' });

function split(device: Device, amplitude: number, phase: number, offset: number): { x: ReturnType<typeof tensor>; y: ReturnType<typeof tensor> } {
  const xs = Float32Array.from({ length: 10 }, (_, i) => -2 + (4 * (i + offset)) / 10);
  const ys = xs.map((x) => amplitude * Math.sin(x + phase));
  return { x: tensor(xs, [10, 1], 'f32', device), y: tensor(ys, [10, 1], 'f32', device) };
}

export function regressionFixture(device: Device) {
  const theta: MlpParams = model.init(3, device);
  const tasks: SupportQueryTask[] = [
    [1, 0],
    [0.5, 1],
    [2, -0.5],
  ].map(([a, p]) => ({ support: split(device, a, p, 0), query: split(device, a, p, 0.5) }));
  const dispose = (): void => {
    disposeTree(theta);
    for (const t of tasks) disposeTree([t.support.x, t.support.y, t.query.x, t.query.y]);
  };
  return { problem: mseRegressionProblem<MlpParams>((p, x) => model.apply(p, x)), theta, tasks, dispose };
}
