/**
 * @file Standard scaling (z-scores per column) for regression data: fit once on the training tasks' inputs
 * and outputs, then apply to every task (train and test) and invert on predictions.
 */
import type { RegressionData } from './tasks';

/** Per-column mean and standard deviation of row-major data with `dim` columns. */
export interface StandardScaler {
  dim: number;
  mean: Float64Array;
  std: Float64Array;
}

/** Fits on the union of the arrays' rows (float64 accumulation). A constant column gets std 1 (no blow-up). */
export function fitStandardScaler(arrays: readonly ArrayLike<number>[], dim: number): StandardScaler {
  const sum = new Float64Array(dim);
  let rows = 0;
  for (const values of arrays) {
    if (values.length % dim !== 0) throw new RangeError(`fitStandardScaler: ${values.length} values are not rows of ${dim}`);
    for (let i = 0; i < values.length; i++) sum[i % dim] += values[i];
    rows += values.length / dim;
  }
  if (rows === 0) throw new RangeError('fitStandardScaler: no rows to fit');
  const mean = sum.map((s) => s / rows);
  const squares = new Float64Array(dim);
  for (const values of arrays) for (let i = 0; i < values.length; i++) squares[i % dim] += (values[i] - mean[i % dim]) ** 2;
  const std = squares.map((s) => Math.sqrt(s / rows) || 1);
  return { dim, mean, std };
}

/** (x − mean) / std per column. */
export function applyScaler(scaler: StandardScaler, values: ArrayLike<number>): Float32Array {
  return mapColumns(scaler, values, (v, mean, std) => (v - mean) / std);
}

/** x · std + mean per column: back to the original units (e.g. predictions before computing nRMSE). */
export function invertScaler(scaler: StandardScaler, values: ArrayLike<number>): Float32Array {
  return mapColumns(scaler, values, (v, mean, std) => v * std + mean);
}

function mapColumns(scaler: StandardScaler, values: ArrayLike<number>, f: (v: number, mean: number, std: number) => number): Float32Array {
  const { dim, mean, std } = scaler;
  if (values.length % dim !== 0) throw new RangeError(`scaler: ${values.length} values are not rows of ${dim}`);
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f(values[i], mean[i % dim], std[i % dim]);
  return out;
}

/** Scalers for inputs and outputs of a regression problem. */
export interface RegressionScaling {
  x: StandardScaler;
  y: StandardScaler;
}

/** Fits input and output scalers on the training tasks' data. */
export function fitRegressionScaling(datasets: readonly RegressionData[]): RegressionScaling {
  if (datasets.length === 0) throw new RangeError('fitRegressionScaling: no datasets');
  return {
    x: fitStandardScaler(
      datasets.map((d) => d.x),
      datasets[0].inputDim,
    ),
    y: fitStandardScaler(
      datasets.map((d) => d.y),
      1,
    ),
  };
}

/** The dataset in scaled units (any extra fields, such as `batch`, are kept). */
export function scaleRegressionData<D extends RegressionData>(data: D, scaling: RegressionScaling): D {
  return { ...data, x: applyScaler(scaling.x, data.x), y: applyScaler(scaling.y, data.y) };
}
