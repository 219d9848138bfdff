/** @file MAML / FOMAML / Reptile against PyTorch fixtures, iMAML on a quadratic against its closed form, meta-batches and outer steps, named errors, leaks. */
import { describe, expect, it } from 'vitest';
import { FOMAML, MAML, MetaTrainer, Reptile, adapt, iMAML, metaGradientBatch, type MetaLearner } from '@metagrad/meta';
import { InvalidArgumentError, type Tensor, tensor } from '@metagrad/tensor';
import { expectNoLeaks } from '@metagrad/autograd';
import { adam, disposeTree, leaves, sgd } from '@metagrad/models';
import { useDevice } from '../helpers/device';
import { type FixtureTensor, upload } from '../helpers/fixture-json';
import { solve } from '../helpers/linear-solve';
import { mamlFixture as fx, mamlFixtureSetup as fixtureSetup } from '../helpers/maml-fixture';
import { disposeTask, linearProblem, makeTask } from '../helpers/meta-tasks';

const getDevice = useDevice();

/** max |a − b| / max |b| over all leaves. */
async function relErr(got: Tensor[], want: FixtureTensor[]): Promise<number> {
  let num = 0;
  let den = 0;
  for (let i = 0; i < got.length; i++) {
    const g = await got[i].toArray();
    want[i].data.forEach((w, k) => {
      num = Math.max(num, Math.abs(g[k] - w));
      den = Math.max(den, Math.abs(w));
    });
  }
  return num / den;
}

describe('MAML family against PyTorch (2-8-8-1 tanh MLP, 3 inner steps, lr 0.1)', () => {
  const cases: [string, () => MetaLearner, 'maml' | 'fomaml' | 'reptile'][] = [
    ['MAML (second order)', () => MAML({ steps: fx.steps, innerLr: fx.innerLr }), 'maml'],
    ['FOMAML', () => FOMAML({ steps: fx.steps, innerLr: fx.innerLr }), 'fomaml'],
    ['Reptile', () => Reptile({ steps: fx.steps, innerLr: fx.innerLr }), 'reptile'],
  ];
  for (const [name, make, key] of cases) {
    it(`${name} matches the fixture and frees everything`, async () => {
      const device = getDevice();
      const s = fixtureSetup(device);
      try {
        await expectNoLeaks(
          async () => {
            const r = await make().metaGradient(s.problem, s.theta, s.task);
            expect(await relErr(leaves(r.gradient), fx[key])).toBeLessThan(2e-5);
            expect(r.outerLoss).toBeCloseTo(fx.outerLoss, 5);
            expect(r.stats.innerSteps).toBe(fx.steps);
            disposeTree(r.gradient);
          },
          device,
          name,
        );
      } finally {
        s.dispose();
      }
    });
  }

  it('second-order MAML differs from FOMAML here (the fixture exercises the Hessian terms)', async () => {
    expect(
      await relErr(
        fx.fomaml.map((t) => upload(t, getDevice())),
        fx.maml,
      ),
    ).toBeGreaterThan(1e-2);
  });

  it('a meta-batch averages per-task gradients, and a trainer step with SGD(lr 1) moves θ by −gradient', async () => {
    const device = getDevice();
    const s = fixtureSetup(device);
    try {
      await expectNoLeaks(
        async () => {
          const learner = FOMAML({ steps: fx.steps, innerLr: fx.innerLr });
          const batch = await metaGradientBatch(learner, s.problem, s.theta, [s.task, s.task]);
          expect(await relErr(leaves(batch.gradient), fx.fomaml)).toBeLessThan(2e-5);
          expect(batch.stats.innerSteps).toBe(2 * fx.steps);
          disposeTree(batch.gradient);
          const trainer = new MetaTrainer(learner, s.problem, s.theta, sgd({ lr: 1 }));
          await trainer.step([s.task]);
          const want = fx.theta.map((t, i) => ({
            shape: t.shape,
            data: t.data.map((v, k) => v - fx.fomaml[i].data[k]),
          }));
          expect(await relErr(leaves(trainer.theta), want)).toBeLessThan(2e-5);
          expect(trainer.iteration).toBe(1);
          trainer.dispose();
          // Adam's state (moments) is replaced each step and released with the trainer.
          const withAdam = new MetaTrainer(learner, s.problem, s.theta, adam({ lr: 1e-3 }));
          await withAdam.step([s.task]);
          await withAdam.step([s.task]);
          withAdam.dispose();
          const curve = await adapt(s.problem, s.theta, s.task, {
            steps: 3,
            innerLr: fx.innerLr,
            evalAt: [0, 3],
            evaluate: async (p) => await readLoss(s.problem.outerLoss(p, s.task)),
          });
          expect(curve[1]).toBeCloseTo(fx.outerLoss, 4);
        },
        device,
        'meta-batch and trainer',
      );
    } finally {
      s.dispose();
    }
  });
});

async function readLoss(t: Tensor): Promise<number> {
  const v = await t.item();
  t.dispose();
  return v;
}

// ---- iMAML on a quadratic: linear model u ↦ X u, mean squared error, so H = 2XᵀX/N exactly.

type Mat = number[][];
const matVec = (A: Mat, v: number[]): number[] => A.map((r) => r.reduce((s, a, j) => s + a * v[j], 0));
/** H = 2XᵀX/N and b = 2Xᵀy/N of the mean squared error of the linear model. */
function quadratic(x: number[], y: number[], d: number): { H: Mat; b: number[] } {
  const N = y.length;
  const H = Array.from({ length: d }, (_, i) =>
    Array.from({ length: d }, (_, j) => {
      let s = 0;
      for (let k = 0; k < N; k++) s += x[k * d + i] * x[k * d + j];
      return (2 * s) / N;
    }),
  );
  const b = Array.from({ length: d }, (_, i) => {
    let s = 0;
    for (let k = 0; k < N; k++) s += x[k * d + i] * y[k];
    return (2 * s) / N;
  });
  return { H, b };
}

describe('iMAML', () => {
  it('matches (I + H/λ)⁻¹∇J(u*) on a quadratic, with u* = (H + λI)⁻¹(b + λθ)', async () => {
    const device = getDevice();
    const d = 3;
    const lambda = 2;
    const xs = [0.3, -0.8, 0.5, 0.9, 0.1, -0.4, -0.6, 0.7, 0.2, 0.4, 0.4, -0.9, -0.2, -0.3, 0.8];
    const ys = [0.5, -1.0, 0.3, 0.8, -0.2];
    const xq = [0.6, 0.2, -0.5, -0.7, 0.9, 0.1, 0.2, -0.4, 0.6, -0.1, -0.8, -0.3];
    const yq = [0.1, 0.7, -0.4, -0.6];
    const th = [0.2, -0.1, 0.4];
    const { H, b } = quadratic(xs, ys, d);
    const q = quadratic(xq, yq, d);
    const ustar = solve(
      H.flatMap((r, i) => r.map((v, j) => v + (i === j ? lambda : 0))),
      b.map((v, i) => v + lambda * th[i]),
    );
    const gJ = matVec(q.H, ustar).map((v, i) => v - q.b[i]);
    const want = solve(
      H.flatMap((r, i) => r.map((v, j) => (i === j ? 1 : 0) + v / lambda)),
      gJ,
    );

    const theta = { w: tensor(Float32Array.from(th), [d, 1], 'f32', device) };
    const task = makeTask(device, xs, ys, xq, yq, d);
    try {
      await expectNoLeaks(
        async () => {
          const problem = linearProblem;
          const r = await iMAML({ lambda, cgSteps: d, steps: 300, innerLr: 0.2 }).metaGradient(problem, theta, task);
          const got = Array.from(await r.gradient.w.toArray());
          got.forEach((g, i) => expect(g).toBeCloseTo(want[i], 4));
          expect(r.stats.hvps).toBeLessThanOrEqual(d);
          disposeTree(r.gradient);
        },
        device,
        'iMAML',
      );
    } finally {
      disposeTree(theta);
      disposeTask(task);
    }
  });
});

describe('named errors', () => {
  it('invalid settings throw InvalidArgumentError naming the value', () => {
    expect(() => MAML({ steps: 0, innerLr: 0.1 })).toThrow(InvalidArgumentError);
    expect(() => MAML({ steps: 2, innerLr: -1 })).toThrow(/innerLr .* -1/);
    expect(() => FOMAML({ steps: 1.5, innerLr: 0.1 })).toThrow(/steps .* 1.5/);
    expect(() => Reptile({ steps: 1, innerLr: Number.NaN })).toThrow(InvalidArgumentError);
    expect(() => iMAML({ lambda: 0, cgSteps: 5 })).toThrow(/lambda .* 0/);
    expect(() => iMAML({ lambda: 1, cgSteps: 0 })).toThrow(/cgSteps/);
  });
  it('an empty meta-batch is refused', async () => {
    await expect(metaGradientBatch(FOMAML({ steps: 1, innerLr: 0.1 }), linearProblem, { w: tensor([1], [1, 1], 'f32', getDevice()) }, [])).rejects.toThrow(
      /empty/,
    );
  });
});
