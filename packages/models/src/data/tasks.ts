/**
 * @file Few-shot regression task families as host arrays: sinusoids (MAML / HyperDistill), and the
 * CosMixture and Alpine 2-D functions of Adjoint-MAML. Each family samples a task's parameters from a
 * seed, evaluates the task's function, and samples inputs uniformly from its domain.
 */
import { Rng, deriveSeed } from './random';

/** n examples, x row-major n×inputDim, y n×1. */
export interface RegressionData {
  x: Float32Array;
  y: Float32Array;
  n: number;
  inputDim: number;
}

/** A meta-batch of tasks with the same n: x is B×n×inputDim, y is B×n×1 (one upload, one batched forward). */
export interface BatchedRegressionData extends RegressionData {
  batch: number;
}

export interface TaskFamily<T> {
  readonly name: string;
  readonly inputDim: number;
  /** Every input coordinate is drawn uniformly from [low, high]. */
  readonly domain: readonly [number, number];
  /** A task's function parameters, reproducible from the seed. */
  sampleTask(seed: number): T;
  /** f(x) for n×inputDim inputs (computed in float64, returned as float32). */
  evaluate(task: T, x: ArrayLike<number>): Float32Array;
  /** nShot inputs uniform on the domain and their targets. */
  sampleData(task: T, nShot: number, seed: number): RegressionData;
}

/** y = amplitude · sin(x − phase), the convention of MAML's reference code. */
export interface SinusoidTask {
  amplitude: number;
  phase: number;
}

/** f(x) = −0.1 Σ_i A cos(ω x_i + φ) − Σ_i x_i² (one A, ω, φ shared by both coordinates, as in eq. 9). */
export interface CosMixtureTask {
  amplitude: number;
  frequency: number;
  phase: number;
}

/** f(x) = Σ_i |x_i sin(x_i + φ_i) + 0.1 x_i| (one phase per coordinate, as in eq. 10). */
export interface AlpineTask {
  phases: [number, number];
}

/** Builds a family from its parameter sampler and pointwise function, sharing input sampling and validation. */
function defineFamily<T>(
  name: string,
  inputDim: number,
  domain: readonly [number, number],
  sampleTask: (rng: Rng) => T,
  f: (task: T, x: ArrayLike<number>, offset: number) => number,
): TaskFamily<T> {
  const evaluate = (task: T, x: ArrayLike<number>): Float32Array => {
    if (x.length % inputDim !== 0) throw new RangeError(`${name}: ${x.length} input values are not rows of ${inputDim}`);
    const n = x.length / inputDim;
    const y = new Float32Array(n);
    for (let i = 0; i < n; i++) y[i] = f(task, x, i * inputDim);
    return y;
  };
  return {
    name,
    inputDim,
    domain,
    sampleTask: (seed) => sampleTask(new Rng(seed)),
    evaluate,
    sampleData(task, nShot, seed) {
      if (!(Number.isInteger(nShot) && nShot >= 0)) throw new RangeError(`${name}: nShot must be a non-negative integer, got ${nShot}`);
      const x = new Rng(seed).uniformArray(nShot * inputDim, domain[0], domain[1]);
      return { x, y: evaluate(task, x), n: nShot, inputDim };
    },
  };
}

export const sinusoidFamily: TaskFamily<SinusoidTask> = defineFamily(
  'sinusoid',
  1,
  [-5, 5],
  (rng) => ({ amplitude: rng.uniform(0.1, 5), phase: rng.uniform(0, Math.PI) }),
  (task, x, o) => task.amplitude * Math.sin(x[o] - task.phase),
);

export const cosMixtureFamily: TaskFamily<CosMixtureTask> = defineFamily(
  'cos-mixture',
  2,
  [-1, 1],
  (rng) => ({
    amplitude: rng.uniform(0.1, 1),
    frequency: rng.uniform(0.5 * Math.PI, 2 * Math.PI),
    phase: rng.uniform(3, 6),
  }),
  (task, x, o) => {
    let value = 0;
    for (let i = 0; i < 2; i++) {
      const xi = x[o + i];
      value += -0.1 * task.amplitude * Math.cos(task.frequency * xi + task.phase) - xi * xi;
    }
    return value;
  },
);

const ALPINE_PHASE_LIMIT = (5 * Math.PI) / 12;

export const alpineFamily: TaskFamily<AlpineTask> = defineFamily(
  'alpine',
  2,
  [-10, 10],
  (rng) => ({
    phases: [rng.uniform(-ALPINE_PHASE_LIMIT, ALPINE_PHASE_LIMIT), rng.uniform(-ALPINE_PHASE_LIMIT, ALPINE_PHASE_LIMIT)],
  }),
  (task, x, o) => {
    let value = 0;
    for (let i = 0; i < 2; i++) {
      const xi = x[o + i];
      value += Math.abs(xi * Math.sin(xi + task.phases[i]) + 0.1 * xi);
    }
    return value;
  },
);

/** `count` tasks; task i depends only on (seed, i), so growing the count keeps the earlier tasks. */
export function sampleTasks<T>(family: TaskFamily<T>, count: number, seed: number): T[] {
  return Array.from({ length: count }, (_, i) => family.sampleTask(deriveSeed(seed, i)));
}

/** A task's support (inner-loop training) and query (validation) sets, drawn independently. */
export function sampleEpisode<T>(
  family: TaskFamily<T>,
  task: T,
  options: { nSupport: number; nQuery: number; seed: number },
): { support: RegressionData; query: RegressionData } {
  return {
    support: family.sampleData(task, options.nSupport, deriveSeed(options.seed, 0)),
    query: family.sampleData(task, options.nQuery, deriveSeed(options.seed, 1)),
  };
}

/** Stacks same-size datasets into one B×n×d batch. */
export function stackRegressionData(datasets: readonly RegressionData[]): BatchedRegressionData {
  if (datasets.length === 0) throw new RangeError('stackRegressionData: no datasets');
  const { n, inputDim } = datasets[0];
  const x = new Float32Array(datasets.length * n * inputDim);
  const y = new Float32Array(datasets.length * n);
  datasets.forEach((data, b) => {
    if (data.n !== n || data.inputDim !== inputDim) {
      throw new RangeError(`stackRegressionData: dataset ${b} is ${data.n}×${data.inputDim}, the first is ${n}×${inputDim}`);
    }
    x.set(data.x, b * n * inputDim);
    y.set(data.y, b * n);
  });
  return { x, y, n, inputDim, batch: datasets.length };
}

/**
 * A meta-batch: `metaBatch` fresh tasks and their support/query sets, stacked (e.g. the sinusoid
 * experiment's 10 tasks × 10 shots, run as one batched forward).
 */
export function sampleMetaBatch<T>(
  family: TaskFamily<T>,
  options: { metaBatch: number; nSupport: number; nQuery: number; seed: number },
): { tasks: T[]; support: BatchedRegressionData; query: BatchedRegressionData } {
  const tasks = sampleTasks(family, options.metaBatch, deriveSeed(options.seed, 0));
  const episodes = tasks.map((task, b) =>
    sampleEpisode(family, task, {
      nSupport: options.nSupport,
      nQuery: options.nQuery,
      seed: deriveSeed(options.seed, 1, b),
    }),
  );
  return {
    tasks,
    support: stackRegressionData(episodes.map((e) => e.support)),
    query: stackRegressionData(episodes.map((e) => e.query)),
  };
}
