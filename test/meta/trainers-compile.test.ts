/**
 * @file MetaTrainer and EpisodicTrainer with `compile` (the default) against `compile: false`: the same θ / λ / φ
 * and logged values over several steps or episodes for every learner and method that compiles (≤ 1e-5 relative),
 * replays actually happening; NaN/Inf updates refused from a replay with λ and φ unchanged; no leaks once compiled.
 */
import { describe, expect, it } from 'vitest';
import { tensor, type Device, type Tensor } from '@metagrad/tensor';
import { expectNoLeaks, mul, mulScalar } from '@metagrad/autograd';
import { adam, disposeTree, mapTree, mlp, Rng, type MlpParams, type ParamTree } from '@metagrad/models';
import {
  DrMAD,
  EpisodicTrainer,
  FOMAML,
  HyperDistill,
  MAML,
  MetaTrainer,
  NonFiniteHypergradientError,
  Reptile,
  firstOrderMethod,
  hyperDistillMethod,
  mseRegressionProblem,
  offlineMethod,
  regressionBatchOps,
  treeToVector,
  type Episode,
  type HyperMethod,
  type MetaLearner,
  type RegressionBatch,
  type SupportQueryTask,
} from '@metagrad/meta';
import { useDevice } from '../helpers/device';
import { B, anil, anilTrainer, features, sinusoidEpisode } from './anil-fixture';

const getDevice = useDevice();

/** max |a − b| / max |b| over two host vectors. */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / Math.max(den, 1e-30);
}

async function vec(tree: ParamTree): Promise<number[]> {
  return Array.from(await treeToVector(tree));
}

// ---------------------------------------------------------------------------------------------------- MetaTrainer

const regressor = mlp({ sizes: [2, 16, 16, 1], activation: 'tanh' });
const problem = mseRegressionProblem<MlpParams>((p, x) => regressor.apply(p, x));

/** A task like amaml-common's DeviceTask: tensors plus host values that differ per task (never in the signature). */
type HostTask = SupportQueryTask & { queryNorm: number; queryCount: number };

function taskPool(device: Device, count: number, seed: number): HostTask[] {
  const rng = new Rng(seed);
  const mk = (n: number, a: number, ph: number) => {
    const x = rng.uniformArray(2 * n, -2, 2);
    const y = Array.from({ length: n }, (_, i) => a * Math.sin(x[2 * i] + ph) + 0.3 * x[2 * i + 1]);
    return { x: tensor(x, [n, 2], 'f32', device), y: tensor(y, [n, 1], 'f32', device) };
  };
  return Array.from({ length: count }, (_, i) => {
    const a = 0.5 + rng.uniform(0, 1);
    const ph = rng.uniform(0, 3);
    return { support: mk(6, a, ph), query: mk(8, a, ph), queryNorm: 1 + i, queryCount: 8 };
  });
}

/** k distinct tasks of the pool in random order. */
function draw<X>(rng: Rng, pool: readonly X[], k: number): X[] {
  const left = [...pool];
  return Array.from({ length: k }, () => left.splice(rng.int(left.length), 1)[0]);
}

const disposeTasks = (tasks: SupportQueryTask[]): void => tasks.forEach((t) => [t.support.x, t.support.y, t.query.x, t.query.y].forEach((x) => x.dispose()));

const learners: [string, () => MetaLearner][] = [
  ['MAML', () => MAML({ steps: 3, innerLr: 0.1 })],
  ['FOMAML', () => FOMAML({ steps: 3, innerLr: 0.1 })],
  ['Reptile', () => Reptile({ steps: 3, innerLr: 0.1 })],
];

describe('MetaTrainer compiled', () => {
  for (const [name, make] of learners) {
    it(`${name}: 8 steps on meta-batches of 3 (tasks varying, host fields differing) equal compile: false; replays from step 4`, async () => {
      const device = getDevice();
      const pool = taskPool(device, 5, 11);
      const theta0 = regressor.init(5, device);
      const compiled = new MetaTrainer(make(), problem, theta0, adam({ lr: 1e-2 }));
      const eager = new MetaTrainer(make(), problem, theta0, adam({ lr: 1e-2 }), { compile: false });
      expect(eager.compileStats()).toBeNull();
      const rng = new Rng(4);
      for (let it = 0; it < 8; it++) {
        // Three distinct tasks (a task twice in one batch aliases arguments: another signature, traced on its own).
        const batch = draw(rng, pool, 3);
        const a = await compiled.step(batch);
        const b = await eager.step(batch);
        expect(Math.abs(a.outerLoss - b.outerLoss) / Math.abs(b.outerLoss), `outer loss at step ${it}`).toBeLessThan(1e-5);
        expect(a.stats).toEqual(b.stats);
      }
      expect(relDiff(await vec(compiled.theta), await vec(eager.theta))).toBeLessThan(1e-5);
      const stats = compiled.compileStats()!;
      expect(stats.replays).toBe(5);
      expect(stats.signatures).toBe(1);
      expect(compiled.compileFallback).toBeNull();
      compiled.dispose();
      eager.dispose();
      disposeTree(theta0);
      disposeTasks(pool);
    });
  }

  it('a loss that uses a task host value (frozen into a replay) is a TraceError: the trainer falls back to eager steps, same results', async () => {
    const device = getDevice();
    const pool = taskPool(device, 4, 13);
    const theta0 = regressor.init(8, device);
    // J scaled by the task's queryNorm: a host value per task, which the two traced calls see differently.
    const scaled = {
      innerLoss: problem.innerLoss,
      outerLoss: (p: MlpParams, task: HostTask) => {
        const l = problem.outerLoss(p, task);
        const out = mulScalar(l, 1 / task.queryNorm);
        l.dispose();
        return out;
      },
    };
    const compiled = new MetaTrainer(FOMAML({ steps: 2, innerLr: 0.1 }), scaled, theta0, adam({ lr: 1e-2 }));
    const eager = new MetaTrainer(FOMAML({ steps: 2, innerLr: 0.1 }), scaled, theta0, adam({ lr: 1e-2 }), {
      compile: false,
    });
    for (let it = 0; it < 6; it++) {
      const batch = [pool[it % 4], pool[(it + 1) % 4]];
      const a = await compiled.step(batch);
      const b = await eager.step(batch);
      expect(Math.abs(a.outerLoss - b.outerLoss) / Math.abs(b.outerLoss)).toBeLessThan(1e-5);
    }
    expect(compiled.compileFallback).toMatch(/^compile: /);
    expect(compiled.compileStats()).toBeNull();
    expect(relDiff(await vec(compiled.theta), await vec(eager.theta))).toBeLessThan(1e-5);
    compiled.dispose();
    eager.dispose();
    disposeTree(theta0);
    disposeTasks(pool);
  });

  it('no leaks over 50 compiled MAML steps (after the warm-up and traces)', async () => {
    const device = getDevice();
    const pool = taskPool(device, 4, 12);
    const theta0 = regressor.init(6, device);
    const tr = new MetaTrainer(MAML({ steps: 2, innerLr: 0.1 }), problem, theta0, adam({ lr: 1e-3 }));
    const rng = new Rng(5);
    const batch = () => draw(rng, pool, 2);
    for (let i = 0; i < 3; i++) await tr.step(batch());
    await expectNoLeaks(
      async () => {
        for (let i = 0; i < 50; i++) await tr.step(batch());
      },
      device,
      'MetaTrainer compiled steps',
    );
    expect(tr.compileStats()!.replays).toBe(50);
    tr.dispose();
    disposeTree(theta0);
    disposeTasks(pool);
  });
});

// ----------------------------------------------------------------------------------------------- EpisodicTrainer

interface MethodCase {
  name: string;
  make(): HyperMethod<RegressionBatch>;
  /** Distinct D_t per step (HyperDistill's distilled batch D* is then merged on the host, outside the replay). */
  distinct?: boolean;
}

const methods: MethodCase[] = [
  { name: 'FO', make: () => firstOrderMethod() },
  {
    name: '1-step',
    make: () => hyperDistillMethod(new HyperDistill({ gamma: 0, estimationPeriod: 1, theta: 1 }), '1-step'),
  },
  {
    name: 'HyperDistill γ=0.9 (θ fitted every 2 episodes)',
    make: () => hyperDistillMethod(new HyperDistill({ gamma: 0.9, estimationPeriod: 2 })),
  },
  {
    name: 'HyperDistill γ=0.9, D_t differing (D* merged)',
    make: () => hyperDistillMethod(new HyperDistill({ gamma: 0.9, estimationPeriod: 50, theta: 0.7, batchOps: regressionBatchOps, seed: 3 })),
    distinct: true,
  },
  { name: 'DrMAD', make: () => offlineMethod(new DrMAD(), 'DrMAD') },
  { name: 'none (plain inner optimisation)', make: () => ({ name: 'none' }) },
];

const T = 4;
/** Methods compiled as one whole inner optimisation (offline core or none) rather than per inner step. */
const perEpisode = (c: MethodCase): boolean => c.name === 'DrMAD' || c.name.startsWith('none');

/** An episode of T steps; with `distinct` every step gets its own support batch. */
function episode(device: Device, seed: number, distinct = false, poison?: number): Episode<RegressionBatch> {
  if (!distinct) return sinusoidEpisode(device, seed, T, poison);
  const eps = Array.from({ length: T }, (_, t) => sinusoidEpisode(device, seed * 100 + t, 1, poison));
  return {
    trainBatches: eps.map((e) => e.trainBatches[0]),
    valBatch: eps[0].valBatch,
    dispose: () => eps.forEach((e) => e.dispose()),
  };
}

function trainers(device: Device, c: MethodCase) {
  const a = anilTrainer(device, c.make(), { hyperLr: 1e-2, reptileLr: 0.5 });
  const lambda = features.init(7, device) as unknown as ParamTree;
  const phi = {
    weight: tensor(new Rng(3).uniformArray(8, -0.3, 0.3), [1, 8, 1], 'f32', device),
    bias: tensor([0], [1, 1, 1], 'f32', device),
  };
  const eager = new EpisodicTrainer<RegressionBatch>({
    problem: anil,
    lambda,
    phi,
    method: c.make(),
    optimiser: { lr: 0.01, momentum: 0.9 },
    hyperLr: 1e-2,
    reptileLr: 0.5,
    initialWeights: (p) => anil.initialWeights(p, B),
    reptileTarget: (w) => anil.taskMean(w),
    compile: false,
  });
  disposeTree(phi as ParamTree);
  return {
    compiled: a.tr,
    compiledLambda: a.lambda,
    eager,
    eagerLambda: lambda,
    dispose: () => {
      a.dispose();
      eager.dispose();
      disposeTree(lambda);
    },
  };
}

describe('EpisodicTrainer compiled', () => {
  for (const c of methods) {
    it(`${c.name}: 5 episodes equal compile: false (λ, φ, validation losses, counters), from replays`, async () => {
      const device = getDevice();
      const t = trainers(device, c);
      expect(t.eager.compileStats()).toBeNull();
      for (let m = 1; m <= 5; m++) {
        const ep = episode(device, 20 + m, c.distinct);
        const a = await t.compiled.runEpisode(ep);
        const b = await t.eager.runEpisode(ep);
        ep.dispose();
        expect(Math.abs(a.valLoss - b.valLoss) / Math.abs(b.valLoss), `validation loss, episode ${m}`).toBeLessThan(1e-5);
        expect([a.updates, a.jvps, a.hvps, a.fitJvps]).toEqual([b.updates, b.jvps, b.hvps, b.fitJvps]);
        expect(relDiff(await vec(t.compiledLambda), await vec(t.eagerLambda)), `λ after episode ${m}`).toBeLessThan(1e-5);
        expect(relDiff(await vec(t.compiled.phi), await vec(t.eager.phi)), `φ after episode ${m}`).toBeLessThan(1e-5);
      }
      const stats = t.compiled.compileStats()!;
      expect(t.compiled.compileFallback).toBeNull();
      // Per-step units: 5·T calls, 3 per signature eager (warm-up + two traces); whole-episode units: 5 calls.
      // With differing D_t, step 1's D* is D_1 itself (aliased arguments): a second signature.
      const calls = stats.eagerCalls + stats.traces + stats.replays;
      const signatures = c.distinct ? 2 : 1;
      expect(calls).toBe(perEpisode(c) ? 5 : 5 * T);
      expect(stats.signatures).toBe(signatures);
      expect(stats.replays).toBe(calls - 3 * signatures);
      t.dispose();
    });
  }

  for (const c of methods.filter((m) => m.name !== 'none (plain inner optimisation)')) {
    for (const poison of [Number.NaN, Number.POSITIVE_INFINITY]) {
      it(`${c.name}: a ${poison} training target in a replayed episode is refused before λ or φ moves; no leak`, async () => {
        const device = getDevice();
        const { tr, lambda, dispose } = anilTrainer(device, c.make(), { hyperLr: 1e-2 });
        for (let m = 1; m <= 3; m++) {
          const ep = episode(device, 40 + m, c.distinct);
          await tr.runEpisode(ep);
          ep.dispose();
        }
        const bad = episode(device, 50, c.distinct, poison);
        const before = [await vec(lambda), await vec(tr.phi)];
        const replays = tr.compileStats()!.replays;
        let error: unknown;
        await expectNoLeaks(async () => {
          error = await tr.runEpisode(bad).catch((e: unknown) => e);
        }, device);
        expect(error).toBeInstanceOf(NonFiniteHypergradientError);
        const where = perEpisode(c) ? 'at the end of inner optimisation 4' : 'at inner step 1 of inner optimisation 4';
        expect((error as Error).message).toMatch(new RegExp(`‖dL_V/dλ‖ = (NaN|Infinity) ${where} .*λ was not updated`));
        expect(tr.compileStats()!.replays, 'the bad episode ran from a replay').toBeGreaterThan(replays);
        expect([await vec(lambda), await vec(tr.phi)]).toEqual(before);
        bad.dispose();
        const good = episode(device, 60, c.distinct);
        expect(Number.isFinite((await tr.runEpisode(good)).valLoss)).toBe(true);
        good.dispose();
        dispose();
      });
    }
  }

  it('an online core with a per-step host value is a TraceError: the trainer falls back to eager, same λ and φ as compile: false', async () => {
    const device = getDevice();
    // FO whose hypergradient is scaled by 1/t, t a host step counter (advanced in `prepare`, outside the compiled
    // call, as HyperDistill's state is): a value frozen into a replay, so the two traced calls differ.
    const counted = (): HyperMethod<RegressionBatch> => {
      const fo = firstOrderMethod<RegressionBatch>('counted FO');
      let t = 0;
      const scale = (r: { hypergrad: ParamTree }, k: number) => {
        const h = mapTree(r.hypergrad, (g) => mulScalar(g, 1 / k));
        disposeTree(r.hypergrad);
        return h;
      };
      const core = fo.online!;
      return {
        name: fo.name,
        begin: async () => void (t = 0),
        online: {
          ...core,
          prepare: () => ({ args: void ++t, owned: [] }),
          tensors: (input) => {
            const r = core.tensors(input, null);
            return { hypergrad: scale(r, t), loss: r.loss };
          },
        },
        step: async (ctx, st) => {
          const r = (await fo.step!(ctx, st))!;
          return { hypergrad: scale(r, st.t), valLoss: r.valLoss, stats: r.stats };
        },
      };
    };
    const t = trainers(device, { name: 'counted', make: counted });
    for (let m = 1; m <= 3; m++) {
      const ep = episode(device, 90 + m);
      await t.compiled.runEpisode(ep);
      await t.eager.runEpisode(ep);
      ep.dispose();
    }
    expect(t.compiled.compileFallback).toMatch(/^compile: /);
    expect(relDiff(await vec(t.compiledLambda), await vec(t.eagerLambda))).toBeLessThan(1e-5);
    expect(relDiff(await vec(t.compiled.phi), await vec(t.eager.phi))).toBeLessThan(1e-5);
    t.dispose();
  });

  it('a NaN hypergradient at inner step 3 of a replayed episode: λ keeps updates 1–2 (as compile: false), φ unchanged, no leak', async () => {
    const device = getDevice();
    const armed = { on: false };
    // FO times a factor that prepare uploads per step (a tensor argument, so replays see it): NaN at step 3 once armed.
    const factored = (): HyperMethod<RegressionBatch> => {
      const fo = firstOrderMethod<RegressionBatch>('factored FO');
      const core = fo.online!;
      const factorAt = (t: number) => (armed.on && t === 3 ? Number.NaN : 1);
      const times = (h: ParamTree, f: number | Tensor) => {
        const out = mapTree(h, (g) => (typeof f === 'number' ? mulScalar(g, f) : mul(g, f)));
        disposeTree(h);
        return out;
      };
      return {
        name: fo.name,
        online: {
          ...core,
          prepare: (_ctx, t) => {
            const f = tensor([factorAt(t)], [1], 'f32', device);
            return { args: f, owned: [f] };
          },
          tensors: (input, f) => {
            const r = core.tensors(input, null);
            return { hypergrad: times(r.hypergrad, f as Tensor), loss: r.loss };
          },
        },
        // Without the checked norm (it was read before the factor): the trainer reads the factored one.
        step: async (ctx, st) => {
          const r = (await fo.step!(ctx, st))!;
          return { hypergrad: times(r.hypergrad, factorAt(st.t)), valLoss: r.valLoss, stats: r.stats };
        },
      };
    };
    const t = trainers(device, { name: 'factored', make: factored });
    const ep = episode(device, 95);
    for (let m = 1; m <= 3; m++) {
      await t.compiled.runEpisode(ep);
      await t.eager.runEpisode(ep);
    }
    armed.on = true;
    const phiBefore = await vec(t.compiled.phi);
    const replays = t.compiled.compileStats()!.replays;
    let error: unknown;
    await expectNoLeaks(async () => {
      error = await t.compiled.runEpisode(ep).catch((e: unknown) => e);
    }, device);
    await expect(t.eager.runEpisode(ep)).rejects.toThrow(NonFiniteHypergradientError);
    expect((error as Error).message).toMatch(/factored FO: ‖dL_V\/dλ‖ = NaN at inner step 3 of inner optimisation 4 /);
    expect(t.compiled.compileStats()!.replays).toBe(replays + 3);
    expect(await vec(t.compiled.phi)).toEqual(phiBefore);
    expect(relDiff(await vec(t.compiledLambda), await vec(t.eagerLambda))).toBeLessThan(1e-5);
    armed.on = false;
    expect(Number.isFinite((await t.compiled.runEpisode(ep)).valLoss)).toBe(true);
    ep.dispose();
    t.dispose();
  });

  it('no leaks over 5 compiled episodes (FO, HyperDistill, DrMAD) after the warm-up episodes', async () => {
    const device = getDevice();
    for (const c of [methods[0], methods[2], methods[4]]) {
      const { tr, dispose } = anilTrainer(device, c.make(), { hyperLr: 1e-2 });
      const ep = episode(device, 80);
      for (let m = 0; m < 3; m++) await tr.runEpisode(ep);
      await expectNoLeaks(
        async () => {
          for (let m = 0; m < 5; m++) await tr.runEpisode(ep);
        },
        device,
        c.name,
      );
      ep.dispose();
      dispose();
    }
  });
});
