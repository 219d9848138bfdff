/** @file Shared pieces of the Adjoint-MAML experiments (E7, E8): the tanh regressor problem, task upload with standard scaling, the learners by name. */
import { type Device, tensor } from '@metagrad/tensor';
import { AdjointMAML, FOMAML, MAML, type MetaLearner, type MetaProblem, Reptile, type SupportQueryTask, iMAML, mseRegressionProblem } from '@metagrad/meta';
import {
  type MlpParams,
  type RegressionData,
  type RegressionScaling,
  type TaskFamily,
  applyScaler,
  deriveSeed,
  fitRegressionScaling,
  sampleEpisode,
  sampleTasks,
  tanhRegressor,
} from '@metagrad/models';

/** The paper's learner: 2 → 32 → 32 → 1 with tanh. */
export const regressor = tanhRegressor({ inputs: 2, hidden: 32, outputs: 1 });

/** Mean squared error of the regressor on the support (inner) and query (outer) sets. */
export const regressionProblem: MetaProblem<MlpParams, SupportQueryTask> = mseRegressionProblem((p: MlpParams, x) => regressor.apply(p, x));

/** A task on the device plus what nRMSE needs on the host: the query targets in original units and the output scale. */
export interface DeviceTask extends SupportQueryTask {
  /** ‖y_query‖ in original units. */
  queryNorm: number;
  queryCount: number;
}

/** Host episodes of `count` tasks of a family, each with its own fixed support and query sets. */
export function hostEpisodes<T>(
  family: TaskFamily<T>,
  count: number,
  nSupport: number,
  nQuery: number,
  seed: number,
): { support: RegressionData; query: RegressionData }[] {
  return sampleTasks(family, count, seed).map((task, i) => sampleEpisode(family, task, { nSupport, nQuery, seed: deriveSeed(seed, 1000 + i) }));
}

/** Standard scaling fitted on the training episodes (inputs and outputs), as in the paper's setup. */
export function fitScaling(train: readonly { support: RegressionData; query: RegressionData }[]): RegressionScaling {
  return fitRegressionScaling(train.flatMap((e) => [e.support, e.query]));
}

export function uploadTask(ep: { support: RegressionData; query: RegressionData }, scaling: RegressionScaling, device: Device): DeviceTask {
  const up = (d: RegressionData) => ({
    x: tensor(applyScaler(scaling.x, d.x), [d.n, d.inputDim], 'f32', device),
    y: tensor(applyScaler(scaling.y, d.y), [d.n, 1], 'f32', device),
  });
  let norm = 0;
  for (const v of ep.query.y) norm += v * v;
  return { support: up(ep.support), query: up(ep.query), queryNorm: Math.sqrt(norm), queryCount: ep.query.n };
}

export function disposeTask(t: SupportQueryTask): void {
  for (const d of [t.support, t.query]) {
    d.x.dispose();
    d.y.dispose();
  }
}

/** nRMSE ‖ŷ − y‖/‖y‖ in original units from the query MSE in scaled units: ŷ − y scales by the output std. */
export function nrmseFromScaledMse(mseScaled: number, task: DeviceTask, scaling: RegressionScaling): number {
  return (scaling.y.std[0] * Math.sqrt(mseScaled * task.queryCount)) / task.queryNorm;
}

export type MethodName = 'A-MAML' | 'MAML' | 'MAML-1' | 'FOMAML' | 'Reptile' | 'iMAML';

/**
 * The learners at `steps` inner GD steps of size `innerLr` (A-MAML: T = steps·innerLr tracked on h = innerLr).
 * MAML may be given fewer steps (`mamlSteps`) because its graph grows with them; iMAML uses λ = 1 and 5 CG steps.
 */
export function makeLearner(name: MethodName, steps: number, innerLr: number, mamlSteps = steps): MetaLearner {
  switch (name) {
    case 'A-MAML':
      return AdjointMAML({ T: steps * innerLr, h: innerLr, forwardMethod: 'dopri5', rtol: 1e-5, atol: 1e-6 });
    case 'MAML':
      return MAML({ steps: mamlSteps, innerLr });
    case 'MAML-1':
      return MAML({ steps: 1, innerLr });
    case 'FOMAML':
      return FOMAML({ steps, innerLr });
    case 'Reptile':
      return Reptile({ steps, innerLr });
    case 'iMAML':
      return iMAML({ lambda: 1, cgSteps: 5, steps, innerLr });
  }
}
