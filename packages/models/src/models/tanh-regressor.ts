/** @file Adjoint-MAML's regressor: inputs → hidden → hidden → outputs with tanh after both hidden layers. */
import { checkPositiveInt } from '../layers/init';
import { type MlpParams, mlp } from './mlp';
import type { Model } from './model';

export interface TanhRegressorOptions {
  inputs: number;
  hidden?: number;
  outputs: number;
}

export function tanhRegressor(options: TanhRegressorOptions): Model<MlpParams> {
  const hidden = options.hidden ?? 32;
  checkPositiveInt('tanhRegressor inputs', options.inputs);
  checkPositiveInt('tanhRegressor hidden', hidden);
  checkPositiveInt('tanhRegressor outputs', options.outputs);
  return mlp({ sizes: [options.inputs, hidden, hidden, options.outputs], activation: 'tanh' });
}
