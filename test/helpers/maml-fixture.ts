/** @file Test fixture: the PyTorch MAML golden case (test/fixtures/maml.json, gen_maml.py): a 2-8-8-1 tanh MLP, one support/query task and the expected meta-gradients. */
import type { Device } from '@metagrad/tensor';
import { type MlpParams, disposeTree, mlp } from '@metagrad/models';
import { type MetaProblem, mseRegressionProblem, type SupportQueryTask } from '@metagrad/meta';
import { type FixtureTensor, readFixture, upload } from './fixture-json';

export interface MamlFixture {
  sizes: number[];
  steps: number;
  innerLr: number;
  /** θ's leaves in order: weight and bias of each of the three layers. */
  theta: FixtureTensor[];
  support: { x: FixtureTensor; y: FixtureTensor };
  query: { x: FixtureTensor; y: FixtureTensor };
  /** The query loss after `steps` inner steps of lr `innerLr`. */
  outerLoss: number;
  /** The meta-gradients, leaf by leaf; `reptile` is θ − u_n. */
  maml: FixtureTensor[];
  fomaml: FixtureTensor[];
  reptile: FixtureTensor[];
}

export const mamlFixture = readFixture<MamlFixture>('maml.json');
const mamlModel = mlp({ sizes: mamlFixture.sizes, activation: 'tanh' });
export const mamlProblem = mseRegressionProblem<MlpParams>((p, x) => mamlModel.apply(p, x));

/** The fixture's problem, and its θ and task on `device`; `dispose` frees θ and the task. */
export function mamlFixtureSetup(device: Device): {
  problem: MetaProblem<MlpParams, SupportQueryTask>;
  theta: MlpParams;
  task: SupportQueryTask;
  dispose: () => void;
} {
  const fx = mamlFixture;
  const theta: MlpParams = [0, 1, 2].map((i) => ({
    weight: upload(fx.theta[2 * i], device),
    bias: upload(fx.theta[2 * i + 1], device),
  }));
  const task: SupportQueryTask = {
    support: { x: upload(fx.support.x, device), y: upload(fx.support.y, device) },
    query: { x: upload(fx.query.x, device), y: upload(fx.query.y, device) },
  };
  const dispose = (): void => {
    disposeTree(theta);
    for (const d of [task.support, task.query]) [d.x, d.y].forEach((t) => t.dispose());
  };
  return { problem: mamlProblem, theta, task, dispose };
}
