/**
 * @file `metagrad bench compile`: the quick bench on the 100-add chain gives a well-formed row whose compiled output
 * equals the eager one; and the bench's step functions compute what the experiments' trainers and learners compute
 * (small sizes: MAML / FOMAML / A-MAML against makeLearner, E5 episodes against EpisodicTrainer, MWN iterations
 * against OnlineTrainer), so the bench times the experiments' maths.
 */
import { describe, expect, it } from 'vitest';
import { tensor, type Tensor } from '@metagrad/tensor';
import { Adam, Rng, SGD, cosMixtureFamily, deriveSeed, disposeTree, flattenTree, leaves, type ParamTree } from '@metagrad/models';
import { EvoGrad, HyperDistill, OneStepLookahead, OnlineTrainer, hyperDistillMethod, regressionBatchOps, type ClassificationBatch } from '@metagrad/meta';
import { useDevice } from '../helpers/device';
import { benchCompile, formatCompileTable, relativeError } from '../../bench/compile';
import { e5Step, initStep, mwnStep, type StepOutput, type WorkloadInstance } from '../../bench/compile-workloads';
import {
  E5_FULL,
  disposeTask,
  e5Methods,
  fitScaling,
  hostEpisodes,
  makeE5Learner,
  makeLearner,
  mlpClassifier,
  mwnProblem,
  regressionProblem,
  regressor,
  sinusoidEpisode,
  uploadTask,
  weightNet,
  type MethodSpec,
} from '@metagrad/experiments/node';

const getDevice = useDevice();

const host = async (ts: Tensor[]): Promise<Float32Array[]> => Promise.all(ts.map(async (t) => Float32Array.from((await t.toArray()) as Float32Array)));

/** One call of a workload instance: its outputs on the host (by key), then handed back to the instance. */
async function callHost(inst: WorkloadInstance, pick: (out: StepOutput) => Record<string, Tensor[]>): Promise<Record<string, Float32Array[]>> {
  const out = await inst.step(...inst.args());
  try {
    const picked = pick(out);
    const res: Record<string, Float32Array[]> = {};
    for (const [k, v] of Object.entries(picked)) res[k] = await host(v);
    return res;
  } finally {
    inst.accept(out);
  }
}

describe('bench compile', () => {
  it('the quick bench on the 100-add chain: one row of the documented shape; compiled equals eager', async () => {
    const device = getDevice();
    const r = await benchCompile(device, { quick: true, only: ['add chain'], rounds: 2 });
    expect(r.rows).toHaveLength(1);
    const row = r.rows[0];
    expect(row.workload).toBe('add chain 100 x [1024], 1 readback');
    for (const k of [
      'workload',
      'eagerMs',
      'fusedMs',
      'compiledMs',
      'speedup',
      'eagerDispatches',
      'fusedDispatches',
      'compiledDispatches',
      'compileMs',
      'torchMs',
      'agrees',
    ]) {
      expect(row).toHaveProperty(k);
    }
    expect(row.error).toBeUndefined();
    expect(row.eagerMs).toBeGreaterThan(0);
    expect(row.fusedMs).toBeGreaterThan(0);
    expect(row.eagerDispatches).toBeGreaterThanOrEqual(100);
    expect(row.torchMs).toBeGreaterThan(0); // from bench/reference/torch_meta.vm.json
    expect(row.compiledMs).toBeGreaterThan(0);
    expect(row.speedup).toBeCloseTo(row.eagerMs / row.compiledMs!, 6);
    expect(row.compiledDispatches).toBe(1);
    expect(row.compileStats).toMatchObject({ traces: 2, dispatchesPerReplay: 1 });
    expect(row.relErr).toBeLessThanOrEqual(1e-5);
    expect(row.relErrUnfused).toBeLessThanOrEqual(1e-5);
    expect(row.agrees).toBe(true);
    expect(row.goals).toEqual([{ goal: 'compiled 1 dispatch', met: true }]);
    expect(formatCompileTable(r)).toContain('| add chain 100 x [1024], 1 readback |');
  });

  it('relativeError: per-leaf ‖a − b‖ / ‖b‖, worst leaf; NaN or a shape mismatch is Infinity', () => {
    const f = (...x: number[]) => Float32Array.from(x);
    expect(relativeError([f(1, 2), f(3, 4)], [f(1, 2), f(3, 4)])).toBe(0);
    expect(relativeError([f(1.5, 0)], [f(1, 0)])).toBeCloseTo(0.5, 6);
    expect(relativeError([f(NaN)], [f(1)])).toBe(Infinity);
    expect(relativeError([f(1)], [f(1), f(2)])).toBe(Infinity);
  });

  it.each(['MAML', 'FOMAML', 'A-MAML'] as const)('%s step (5 inner steps) equals makeLearner(…).metaGradient on the amaml-cost task', async (method) => {
    const device = getDevice();
    const inst = await initStep(method, 5, 0.01).make(device);
    const episodes = hostEpisodes(cosMixtureFamily, 1, 100, 100, 8);
    const task = uploadTask(episodes[0], fitScaling(episodes), device);
    const theta = regressor.init(0, device);
    try {
      const mine = await callHost(inst, (o) => {
        const out = o as { gradient: Tensor | Tensor[]; outerLoss: Tensor };
        return { gradient: leaves(out.gradient), loss: [out.outerLoss] };
      });
      const ref = await makeLearner(method, 5, 0.01).metaGradient(regressionProblem, theta, task);
      const g = method === 'A-MAML' ? [flattenTree(ref.gradient)] : leaves(ref.gradient);
      try {
        expect(relativeError(mine.gradient, await host(g))).toBeLessThan(1e-5);
        expect(mine.loss[0][0]).toBeCloseTo(ref.outerLoss, 6);
      } finally {
        disposeTree(ref.gradient);
        if (method === 'A-MAML') disposeTree(g);
      }
    } finally {
      inst.dispose();
      disposeTask(task);
      disposeTree(theta);
    }
  });

  it.each([
    ['FO', 'fo'],
    ['1-step', 'oneStep'],
    ['HyperDistill γ=0.99', 'hd0.99'],
  ] as const)('E5 %s step (λ 1-16×3, T=3) equals EpisodicTrainer.runEpisode: validation loss and the new φ', async (method, key) => {
    const device = getDevice();
    const cfg = { ...E5_FULL, hidden: 16, steps: 3 };
    const inst = await e5Step(method, cfg).make(device);
    // HyperDistill with θ fixed at 1, as the bench's step (the experiment fits θ at m = 1).
    const spec: MethodSpec =
      key === 'hd0.99'
        ? {
            key: 'hyperdistill0.99',
            label: 'HD',
            make: () => hyperDistillMethod(new HyperDistill({ gamma: 0.99, estimationPeriod: 50, theta: 1, batchOps: regressionBatchOps })),
          }
        : e5Methods(cfg).find((m) => m.key === key)!;
    const learner = makeE5Learner(cfg, device, spec, cfg.seeds[0]);
    const ep = sinusoidEpisode(cfg, device, deriveSeed(cfg.seeds[0], 5, 0));
    try {
      const mine = await callHost(inst, (o) => {
        const out = o as { phi: Tensor[]; final: Tensor };
        return { phi: out.phi, final: [out.final] };
      });
      const rec = await learner.trainer.runEpisode(ep);
      const phi = learner.trainer.phi as { weight: Tensor; bias: Tensor };
      expect(relativeError(mine.phi, await host([phi.weight, phi.bias]))).toBeLessThan(1e-5);
      expect(mine.final[0][0]).toBeCloseTo(rec.valLoss, 5);
    } finally {
      inst.dispose();
      ep.dispose();
      learner.dispose();
    }
  });

  it.each(['plain', 't1-t2', 'evograd-k2'] as const)(
    'MWN %s step (MLP 196-16-16-10, batch 8) equals OnlineTrainer.trainStep: losses and norms',
    async (method) => {
      const device = getDevice();
      const inst = await mwnStep(method, 16, 8).make(device);
      const c = mlpClassifier(16);
      const theta = c.model.init(1, device);
      const lambda = weightNet.init(2, device) as ParamTree;
      const batch = (seed: number): ClassificationBatch => {
        const rng = new Rng(seed);
        return {
          x: tensor(rng.uniformArray(8 * 196), [8, 196], 'f32', device),
          y: tensor(
            Int32Array.from({ length: 8 }, () => rng.int(10)),
            [8],
            'i32',
            device,
          ),
        };
      };
      const [train, val] = [batch(3), batch(4)];
      const thetaOptimizer = new SGD(theta, { lr: 0.1, momentum: 0.9 });
      const lambdaOptimizer = new Adam(lambda, { lr: 1e-3 });
      const estimator =
        method === 'plain'
          ? null
          : method === 't1-t2'
            ? new OneStepLookahead<ClassificationBatch>()
            : new EvoGrad<ClassificationBatch>({ K: 2, sigma: 1e-3, tau: 0.05, noise: 'rademacher', seed: 5 });
      const trainer = new OnlineTrainer({
        problem: mwnProblem(c),
        estimator,
        theta,
        lambda,
        thetaOptimizer,
        lambdaOptimizer,
        order: 'meta-first',
        innerLr: 0.1,
        device,
      });
      try {
        for (let s = 0; s < 2; s++) {
          const [mine] = (await callHost(inst, (o) => ({ v: [o as Tensor] }))).v;
          const log = await trainer.trainStep(train, val);
          const want = method === 'plain' ? [log.trainLoss, log.gradNorm] : [log.valLoss, log.hypergradNorm, log.trainLoss, log.gradNorm];
          expect(relativeError([mine], [Float32Array.from(want)])).toBeLessThan(1e-5);
        }
      } finally {
        inst.dispose();
        thetaOptimizer.dispose();
        lambdaOptimizer.dispose();
        disposeTree([theta, lambda, train.x, train.y, val.x, val.y]);
      }
    },
  );
});
