/**
 * @file E5 (HyperDistill paper, Appendix G): 10-shot sinusoid regression with ANIL on a 1-100-100-100-1 ReLU net
 * (the three feature layers are λ, the last layer adapts), inner SGD momentum 0.9 lr 0.01 for T steps, Adam 1e-3 on
 * λ, meta-batch 10, Reptile (η = 1) on the head's initialisation. Methods: FO, 1-step, DrMAD, Neumann IFT
 * (N = 3 over the last K = 5 steps), HyperDistill γ ∈ {0.9, 0.99} (θ fitted at m = 1, period 50). Measures the
 * meta-test MSE, the cosine of each method's hypergradient (and its second-order part) to the exact unrolled one
 * along meta-training, and JVPs/HVPs, time and peak memory per inner optimisation.
 *
 * Beside the paper's methods, online reverse mode (RMD) over the last K steps and over the whole inner optimisation
 * so far is run as the reference the online approximations stand in for (not in the paper).
 *
 * Choices the paper leaves open: momentum enters the look-ahead's B_t as a constant (m_{t−1} does not depend on λ,
 * so 1-step and HyperDistill differentiate −η∇L_T only) and, by default, LinearEstimation's Jacobians hold it
 * constant too (Â_t = I − ηH_t, eq. 7's Jacobian); DrMAD, online RMD and the exact reference of the cosine
 * diagnostic reverse through the momentum dynamics; D* equals the support set because every step is full-batch.
 */
import { noGrad } from '@metagrad/autograd';
import { tensor, type Device } from '@metagrad/tensor';
import {
  deriveSeed,
  disposeTree,
  mlp,
  Rng,
  sampleMetaBatch,
  sinusoidFamily,
  type BatchedRegressionData,
  type MlpParams,
  type ParamTree,
} from '@metagrad/models';
import {
  DrMAD,
  EpisodicTrainer,
  HyperDistill,
  NeumannIFT,
  anilProblem,
  compareWithExact,
  firstOrderMethod,
  hyperDistillMethod,
  implicitMethod,
  offlineMethod,
  onlineReverseMethod,
  regressionBatchOps,
  runInner,
  type Episode,
  type MomentumJacobian,
  type EpisodeRecord,
  type HyperMethod,
  type RegressionBatch,
} from '@metagrad/meta';
import { median } from './stats';

export interface E5Config {
  seeds: number[];
  /** M: inner optimisations per meta-training run. */
  episodes: number;
  /** T: inner steps. */
  steps: number;
  metaBatch: number;
  shots: number;
  hidden: number;
  innerLr: number;
  momentum: number;
  hyperLr: number;
  reptileLr: number;
  neumann: { iterations: number; lastSteps: number };
  gammas: number[];
  estimationPeriod: number;
  /** How momentum enters LinearEstimation's Jacobians. */
  momentumJacobian: MomentumJacobian;
  /** Online RMD references: horizons K, 'all' for the whole inner optimisation so far. */
  onlineHorizons: (number | 'all')[];
  testTasks: number;
  /**
   * Meta-validation tasks (drawn apart from the meta-test ones) on which the HyperDistill γ of the report's rows is
   * chosen when several γ run; 0 skips it (the configured `reportGamma` is used).
   */
  valTasks: number;
  /** The HyperDistill γ the report's rows use when there is no meta-validation choice. */
  reportGamma: number;
  testChunk: number;
  testQuery: number;
  /** Inner optimisations (1-based) after which the cosine diagnostic runs (on the next meta-batch). */
  diagnoseAt: number[];
  /** Rounds of the side-by-side cost measurement (after one warm-up round). */
  costRepeats: number;
  /** Run only these methods (all when absent). */
  only?: MethodKey[];
  /** Adam's learning rate on λ over meta-training: constant, or decayed linearly from hyperLr to 0 over the M inner optimisations. */
  hyperLrDecay?: 'constant' | 'linear';
  /**
   * The short γ tuning run (E5's extra unit 'tune'): HyperDistill with each γ on `seeds` for `episodes` inner
   * optimisations, scored by the mean MSE on `valTasks` meta-validation tasks; null skips it.
   */
  tune?: { gammas: number[]; seeds: number[]; episodes: number; valTasks: number } | null;
}

/**
 * The HyperDistill γ of the full run, chosen over {0.9, 0.99, 0.999, 0.9999} by the tuning run (`tuneGamma` with
 * E5_FULL.tune: 1 seed (1000), 10 inner optimisations, 200 meta-validation tasks; `npx tsx scripts/e5-tune.ts`,
 * 61 s on llvmpipe): meta-validation MSE γ 0.9 0.370, 0.99 0.356, 0.999 0.349, 0.9999 0.350. The full run's extra
 * 'tune' repeats that run and its summary says whether it still picks this γ.
 */
export const E5_TUNED_GAMMA = 0.999;
/** Online RMD references (K=3 and exact) in the full run only with METAGRAD_E5_REFERENCES=1: they cost ~2/3 of a seed's time. */
const E5_REFERENCES = typeof process !== 'undefined' && process.env?.METAGRAD_E5_REFERENCES === '1';

export const E5_FULL: E5Config = {
  seeds: Array.from({ length: 10 }, (_, i) => i),
  episodes: 30,
  steps: 30,
  metaBatch: 10,
  shots: 10,
  hidden: 100,
  innerLr: 0.01,
  momentum: 0.9,
  hyperLr: 1e-3,
  hyperLrDecay: 'linear',
  reptileLr: 1,
  neumann: { iterations: 3, lastSteps: 5 },
  gammas: [E5_TUNED_GAMMA],
  estimationPeriod: 50,
  momentumJacobian: 'constant',
  onlineHorizons: E5_REFERENCES ? [3, 'all'] : [],
  costRepeats: 5,
  testTasks: 1000,
  valTasks: 200,
  reportGamma: E5_TUNED_GAMMA,
  testChunk: 100,
  testQuery: 50,
  diagnoseAt: [1, 10, 20, 30],
  tune: { gammas: [0.9, 0.99, 0.999, 0.9999], seeds: [1000], episodes: 10, valTasks: 200 },
};

/** The quick variant as before issue 18 (two γ chosen on meta-validation, the RMD references), with the linear decay; no tuning run. */
export const E5_QUICK: E5Config = {
  ...E5_FULL,
  seeds: [0],
  episodes: 6,
  steps: 10,
  testTasks: 100,
  valTasks: 50,
  testChunk: 100,
  testQuery: 20,
  diagnoseAt: [1, 6],
  neumann: { iterations: 3, lastSteps: 3 },
  costRepeats: 2,
  gammas: [0.9, 0.99],
  reportGamma: 0.99,
  onlineHorizons: [3, 'all'],
  tune: null,
};

export type MethodKey = 'fo' | 'oneStep' | 'drmad' | 'neumann' | `hyperdistill${string}` | `rmdOnline${string}`;

export interface MethodSpec {
  key: MethodKey;
  label: string;
  make(): HyperMethod<RegressionBatch>;
}

export function e5Methods(cfg: E5Config): MethodSpec[] {
  const all: MethodSpec[] = [
    { key: 'fo', label: 'FO', make: () => firstOrderMethod('FO') },
    {
      key: 'oneStep',
      label: '1-step',
      make: () => hyperDistillMethod(new HyperDistill({ gamma: 0, estimationPeriod: 1, theta: 1 }), '1-step'),
    },
    { key: 'drmad', label: 'DrMAD', make: () => offlineMethod(new DrMAD(), 'DrMAD') },
    {
      key: 'neumann',
      label: `Neumann IFT (${cfg.neumann.iterations}, ${cfg.neumann.lastSteps})`,
      make: () => implicitMethod(new NeumannIFT({ iterations: cfg.neumann.iterations, alpha: cfg.innerLr }), cfg.neumann.lastSteps, 'Neumann IFT'),
    },
    ...cfg.gammas.map((gamma) => ({
      key: `hyperdistill${gamma}` as MethodKey,
      label: `HD γ=${gamma}`,
      make: () =>
        hyperDistillMethod(
          new HyperDistill<RegressionBatch>({
            gamma,
            estimationPeriod: cfg.estimationPeriod,
            momentumJacobian: cfg.momentumJacobian,
            batchOps: regressionBatchOps,
          }),
          `HyperDistill γ=${gamma}`,
        ),
    })),
    ...cfg.onlineHorizons.map((K) => ({
      key: `rmdOnline${K === 'all' ? '' : K}` as MethodKey,
      label: K === 'all' ? 'RMD online (exact)' : `RMD online K=${K}`,
      make: () => onlineReverseMethod<RegressionBatch>(K === 'all' ? {} : { horizon: K }),
    })),
  ];
  return cfg.only ? all.filter((m) => cfg.only!.includes(m.key)) : all;
}

const upload = (d: BatchedRegressionData, device: Device): RegressionBatch => ({
  x: tensor(d.x, [d.batch, d.n, d.inputDim], 'f32', device),
  y: tensor(d.y, [d.batch, d.n, 1], 'f32', device),
});

/** One meta-batch of sinusoid tasks: the support set as every step's D_t, the query set as the validation batch. */
export function sinusoidEpisode(cfg: E5Config, device: Device, seed: number): Episode<RegressionBatch> {
  const mb = sampleMetaBatch(sinusoidFamily, {
    metaBatch: cfg.metaBatch,
    nSupport: cfg.shots,
    nQuery: cfg.shots,
    seed,
  });
  const support = upload(mb.support, device);
  const query = upload(mb.query, device);
  return {
    trainBatches: Array.from({ length: cfg.steps }, () => support),
    valBatch: query,
    dispose: () => [support, query].forEach(regressionBatchOps.dispose),
  };
}

export interface CosinePoint {
  method: string;
  seed: number;
  m: number;
  cosine: number;
  cosineSecondOrder: number;
  normRatio: number;
  normRatioSecondOrder: number;
}
export interface RunRecord extends EpisodeRecord {
  method: string;
  seed: number;
}

/** The worst validation loss after an inner optimisation (a non-finite one counts as ∞): ≫ 10 means an inner loop diverged. */
export function worstValLoss(records: readonly EpisodeRecord[]): number {
  return Math.max(...records.map((x) => (Number.isFinite(x.valLoss) ? x.valLoss : Infinity)));
}

export interface E5MethodResult {
  key: MethodKey;
  label: string;
  mse: number[];
  records: RunRecord[];
  cosines: CosinePoint[];
  theta: number[];
}

export type E5Progress = (label: string, detail: string) => void;

/** A fresh meta-learner for one method and seed: λ (the feature net), φ (the head's initialisation) and its trainer. */
export function makeE5Learner(cfg: E5Config, device: Device, spec: MethodSpec, seed: number) {
  const features = mlp({
    sizes: [1, cfg.hidden, cfg.hidden, cfg.hidden],
    activation: 'relu',
    outputActivation: 'relu',
  });
  const problem = anilProblem({ features: (l: MlpParams, x) => features.apply(l, x) });
  const lambda = features.init(deriveSeed(seed, 1), device);
  const rng = new Rng(deriveSeed(seed, 2));
  const bound = 1 / Math.sqrt(cfg.hidden);
  const phi = {
    weight: tensor(rng.uniformArray(cfg.hidden, -bound, bound), [1, cfg.hidden, 1], 'f32', device),
    bias: tensor(rng.uniformArray(1, -bound, bound), [1, 1, 1], 'f32', device),
  };
  const method = spec.make();
  const trainer = new EpisodicTrainer<RegressionBatch>({
    problem,
    lambda,
    phi,
    method,
    optimiser: { lr: cfg.innerLr, momentum: cfg.momentum },
    hyperLr: cfg.hyperLr,
    reptileLr: cfg.reptileLr,
    initialWeights: (p) => problem.initialWeights(p, cfg.metaBatch),
    reptileTarget: (w) => problem.taskMean(w),
  });
  const dispose = (): void => {
    trainer.dispose();
    disposeTree([lambda, phi]);
  };
  return { features, problem, lambda, method, trainer, dispose };
}

/**
 * The hyper learning rate of inner optimisation m (1-based): hyperLr, or with 'linear' decay hyperLr·(1 − (m − 1)/M)
 * (the paper's main experiments decay it linearly). Set on the trainer's Adam before the episode; its λ updates
 * within the episode (online methods update every inner step) share it.
 */
export function hyperLrAt(cfg: Pick<E5Config, 'hyperLr' | 'hyperLrDecay' | 'episodes'>, m: number): number {
  return cfg.hyperLrDecay === 'linear' ? cfg.hyperLr * (1 - (m - 1) / cfg.episodes) : cfg.hyperLr;
}

/** One method's meta-training and meta-test (and, if asked, meta-validation) for one seed. */
async function runOne(
  cfg: E5Config,
  device: Device,
  spec: MethodSpec,
  seed: number,
  tick: E5Progress,
  validate = false,
): Promise<{
  mse: number;
  perTask: number[];
  valMse: number | null;
  records: RunRecord[];
  cosines: CosinePoint[];
  theta: number;
}> {
  const { problem, lambda, method, trainer, dispose } = makeE5Learner(cfg, device, spec, seed);
  const records: RunRecord[] = [];
  const cosines: CosinePoint[] = [];
  try {
    for (let m = 1; m <= cfg.episodes; m++) {
      const ep = sinusoidEpisode(cfg, device, deriveSeed(seed, 3, m));
      try {
        trainer.setHyperLr(hyperLrAt(cfg, m));
        const r = await trainer.runEpisode(ep);
        records.push({ ...r, method: spec.key, seed });
        if (cfg.diagnoseAt.includes(m)) {
          // After the episode, on the next meta-batch: the λ and φ the method has reached.
          const next = sinusoidEpisode(cfg, device, deriveSeed(seed, 4, m));
          const w0 = problem.initialWeights(trainer.phi, cfg.metaBatch);
          try {
            const { rows } = await compareWithExact(trainer.context(next, w0, m + 1), [method]);
            cosines.push({ method: spec.key, seed, m, ...rows[0] });
          } finally {
            disposeTree(w0);
            next.dispose();
          }
        }
        tick(spec.label, `seed ${seed} m ${m} val ${r.valLoss.toFixed(3)}`);
      } finally {
        ep.dispose();
      }
    }
    const fitted = method.describe?.().theta;
    const perTask = await metaTestTasks(cfg, device, problem, lambda, trainer.phi);
    const valMse =
      validate && cfg.valTasks > 0
        ? average(
            await metaTestTasks(cfg, device, problem, lambda, trainer.phi, {
              tasks: cfg.valTasks,
              seed: META_VALIDATION_SEED,
            }),
          )
        : null;
    return { mse: average(perTask), perTask, valMse, records, cosines, theta: fitted ?? NaN };
  } finally {
    dispose();
  }
}

export interface EpisodeCost {
  key: MethodKey;
  label: string;
  /** Median wall time of one inner optimisation with its hypergradients, ms. */
  ms: number;
  /** Median peak bytes above what was in use when the episode started (the method's working memory). */
  peakAboveStart: number;
  jvps: number;
  hvps: number;
}

/**
 * Time per inner optimisation (the paper's Table 3), measured side by side: every method gets a learner, one
 * warm-up episode (pipeline compilation and any θ fit), then `repeats` rounds in which each method runs one episode
 * in turn on the same meta-batch, so machine load affects them alike. Every learner's state is alive at once, so
 * the peak is reported above what was in use when the episode started.
 */
export async function measureEpisodeCosts(cfg: E5Config, device: Device, repeats: number, tick: E5Progress = () => {}): Promise<EpisodeCost[]> {
  const learners = e5Methods(cfg).map((spec) => ({ spec, ...makeE5Learner(cfg, device, spec, cfg.seeds[0]) }));
  const samples = learners.map(() => [] as (EpisodeRecord & { start: number })[]);
  try {
    // Three untimed rounds: a whole-episode compiled plan (DrMAD) replays from the fourth call (warm-up, two traces).
    const warmup = 3;
    for (let r = 0; r < repeats + warmup; r++) {
      const ep = sinusoidEpisode(cfg, device, deriveSeed(cfg.seeds[0], 5, r));
      try {
        for (const [i, l] of learners.entries()) {
          const start = device.memory().bytesInUse;
          const rec = await l.trainer.runEpisode(ep);
          if (r >= warmup) samples[i].push({ ...rec, start });
          tick(l.spec.label, `cost round ${r}/${repeats}`);
        }
      } finally {
        ep.dispose();
      }
    }
    return learners.map((l, i) => ({
      key: l.spec.key,
      label: l.spec.label,
      ms: median(samples[i].map((x) => x.ms)),
      peakAboveStart: median(samples[i].map((x) => x.peakBytes - x.start)),
      jvps: median(samples[i].map((x) => x.jvps)),
      hvps: median(samples[i].map((x) => x.hvps)),
    }));
  } finally {
    learners.forEach((l) => l.dispose());
  }
}

/** The fixed meta-test tasks' seed (the same tasks for every method and run seed) and the meta-validation tasks'. */
export const META_TEST_SEED = 987_654;
export const META_VALIDATION_SEED = 123_457;

const average = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Mean query MSE after T inner steps from φ at the learned λ, over the fixed meta-test tasks. */
export async function metaTest(cfg: E5Config, device: Device, problem: ReturnType<typeof anilProblem>, lambda: ParamTree, phi: ParamTree): Promise<number> {
  return average(await metaTestTasks(cfg, device, problem, lambda, phi));
}

/**
 * Each task's query MSE after T inner steps from φ at the learned λ: the fixed meta-test tasks (shared by every
 * method, so differences between methods pair up task by task), or `tasks` others drawn from `seed`.
 */
export async function metaTestTasks(
  cfg: E5Config,
  device: Device,
  problem: ReturnType<typeof anilProblem>,
  lambda: ParamTree,
  phi: ParamTree,
  draw: { tasks: number; seed: number } = { tasks: cfg.testTasks, seed: META_TEST_SEED },
): Promise<number[]> {
  const perTask: number[] = [];
  const chunks = Math.ceil(draw.tasks / cfg.testChunk);
  for (let c = 0; c < chunks; c++) {
    const size = Math.min(cfg.testChunk, draw.tasks - c * cfg.testChunk);
    const mb = sampleMetaBatch(sinusoidFamily, {
      metaBatch: size,
      nSupport: cfg.shots,
      nQuery: cfg.testQuery,
      seed: deriveSeed(draw.seed, c),
    });
    const support = upload(mb.support, device);
    const query = upload(mb.query, device);
    const w0 = problem.initialWeights(phi, size);
    try {
      const { wT } = await runInner({
        problem,
        lambda: () => lambda,
        w0,
        batches: Array.from({ length: cfg.steps }, () => support),
        optimiser: { lr: cfg.innerLr, momentum: cfg.momentum },
      });
      const pred = noGrad(() => problem.predict(wT, lambda, query.x));
      const p = await pred.toArray();
      pred.dispose();
      disposeTree(wT);
      const q = mb.query.n;
      for (let t = 0; t < size; t++) {
        let sum = 0;
        for (let i = 0; i < q; i++) sum += (p[t * q + i] - mb.query.y[t * q + i]) ** 2;
        perTask.push(sum / q);
      }
    } finally {
      disposeTree(w0);
      regressionBatchOps.dispose(support);
      regressionBatchOps.dispose(query);
    }
  }
  return perTask;
}

/** One method's result for one run seed, as E5's per-seed JSON holds it. */
export interface E5SeedMethod {
  key: MethodKey;
  label: string;
  mse: number;
  /** Query MSE per meta-test task (the same tasks for every method and seed). */
  perTask: number[];
  /** Mean MSE on the meta-validation tasks (HyperDistill, when several γ run), else null. */
  valMse: number | null;
  records: RunRecord[];
  cosines: CosinePoint[];
  theta: number;
}

/** Every method of E5 for one run seed (what `runSeed` returns). */
export async function runHyperdistillSeed(
  cfg: E5Config,
  device: Device,
  seed: number,
  tick: E5Progress = () => {},
): Promise<{ seed: number; methods: E5SeedMethod[] }> {
  const specs = e5Methods(cfg);
  const validate = specs.filter((s) => s.key.startsWith('hyperdistill')).length > 1;
  const methods: E5SeedMethod[] = [];
  for (const spec of specs) {
    const r = await runOne(cfg, device, spec, seed, tick, validate && spec.key.startsWith('hyperdistill'));
    methods.push({ key: spec.key, label: spec.label, ...r });
  }
  return { seed, methods };
}

export async function runHyperdistillSinusoid(cfg: E5Config, device: Device, tick: E5Progress = () => {}): Promise<E5MethodResult[]> {
  const out: E5MethodResult[] = [];
  for (const spec of e5Methods(cfg)) {
    const res: E5MethodResult = { key: spec.key, label: spec.label, mse: [], records: [], cosines: [], theta: [] };
    for (const seed of cfg.seeds) {
      const r = await runOne(cfg, device, spec, seed, tick);
      res.mse.push(r.mse);
      res.records.push(...r.records);
      res.cosines.push(...r.cosines);
      res.theta.push(r.theta);
    }
    out.push(res);
  }
  return out;
}

/** What the γ tuning run found: mean meta-validation MSE per γ (over its seeds) and the lowest one's γ. */
export interface E5Tuning {
  gammas: number[];
  seeds: number[];
  episodes: number;
  valTasks: number;
  valMse: Record<string, number>;
  chosen: number;
  /** The γ the full run's seeds used (E5_TUNED_GAMMA when the run was made). */
  used: number;
}

/** The short γ tuning run: HyperDistill with each γ of cfg.tune, scored on meta-validation tasks (not the meta-test ones). */
export async function tuneGamma(cfg: E5Config, device: Device, tick: E5Progress = () => {}): Promise<E5Tuning | null> {
  const t = cfg.tune;
  if (!t) return null;
  const short: E5Config = {
    ...cfg,
    episodes: t.episodes,
    valTasks: t.valTasks,
    gammas: t.gammas,
    diagnoseAt: [],
    onlineHorizons: [],
  };
  const valMse: Record<string, number> = {};
  for (const gamma of t.gammas) {
    const spec = e5Methods(short).find((s) => s.key === `hyperdistill${gamma}`)!;
    const scores: number[] = [];
    for (const seed of t.seeds) {
      const r = await runOne({ ...short, testTasks: 0 }, device, spec, seed, tick, true);
      scores.push(r.valMse ?? NaN);
    }
    valMse[String(gamma)] = average(scores);
  }
  const finite = t.gammas.filter((g) => Number.isFinite(valMse[String(g)]));
  const chosen = finite.length ? finite.reduce((a, b) => (valMse[String(b)] < valMse[String(a)] ? b : a)) : cfg.reportGamma;
  return {
    gammas: t.gammas,
    seeds: t.seeds,
    episodes: t.episodes,
    valTasks: t.valTasks,
    valMse,
    chosen,
    used: cfg.reportGamma,
  };
}
