/** @file MAML / FOMAML / Reptile against PyTorch fixtures, iMAML on a quadratic against its closed form, meta-batches and outer steps, named errors, leaks. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  FOMAML,
  MAML,
  MetaTrainer,
  Reptile,
  adapt,
  iMAML,
  metaGradientBatch,
  type MetaLearner,
  type SupportQueryTask,
  mseRegressionProblem,
} from '@metagrad/meta';
import { InvalidArgumentError, type Device, type Tensor, tensor } from '@metagrad/tensor';
import { expectNoLeaks, matmul } from '@metagrad/autograd';
import { type MlpParams, adam, disposeTree, leaves, mlp, sgd } from '@metagrad/models';
import { useDevice } from '../helpers/device';

interface T {
  shape: number[];
  data: number[];
}
const fx = JSON.parse(readFileSync(new URL('../fixtures/maml.json', import.meta.url), 'utf8')) as {
  sizes: number[];
  steps: number;
  innerLr: number;
  theta: T[];
  support: { x: T; y: T };
  query: { x: T; y: T };
  outerLoss: number;
  maml: T[];
  fomaml: T[];
  reptile: T[];
};

const getDevice = useDevice();
const up = (t: T, device: Device): Tensor => tensor(Float32Array.from(t.data), t.shape, 'f32', device);

function fixtureSetup(device: Device) {
  const model = mlp({ sizes: fx.sizes, activation: 'tanh' });
  const theta: MlpParams = [0, 1, 2].map((i) => ({
    weight: up(fx.theta[2 * i], device),
    bias: up(fx.theta[2 * i + 1], device),
  }));
  const task: SupportQueryTask = {
    support: { x: up(fx.support.x, device), y: up(fx.support.y, device) },
    query: { x: up(fx.query.x, device), y: up(fx.query.y, device) },
  };
  const dispose = (): void => {
    disposeTree(theta);
    for (const d of [task.support, task.query]) [d.x, d.y].forEach((t) => t.dispose());
  };
  return { problem: mseRegressionProblem<MlpParams>((p, x) => model.apply(p, x)), theta, task, dispose };
}

/** max |a − b| / max |b| over all leaves. */
async function relErr(got: Tensor[], want: T[]): Promise<number> {
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
  const cases: [string, () => MetaLearner, keyof typeof fx][] = [
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
            expect(await relErr(leaves(r.gradient), fx[key] as T[])).toBeLessThan(2e-5);
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
        fx.fomaml.map((t) => tensor(Float32Array.from(t.data), t.shape, 'f32', getDevice())),
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
function solve(A: Mat, b: number[]): number[] {
  const n = b.length;
  const M = A.map((r, i) => [...r, b[i]]);
  for (let c = 0; c < n; c++) {
    const p = M.reduce((best, r, i) => (i >= c && Math.abs(r[c]) > Math.abs(M[best][c]) ? i : best), c);
    [M[c], M[p]] = [M[p], M[c]];
    for (let i = 0; i < n; i++) {
      if (i === c) continue;
      const f = M[i][c] / M[c][c];
      for (let j = c; j <= n; j++) M[i][j] -= f * M[c][j];
    }
  }
  return M.map((r, i) => r[n] / r[i]);
}
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
      H.map((r, i) => r.map((v, j) => v + (i === j ? lambda : 0))),
      b.map((v, i) => v + lambda * th[i]),
    );
    const gJ = matVec(q.H, ustar).map((v, i) => v - q.b[i]);
    const want = solve(
      H.map((r, i) => r.map((v, j) => (i === j ? 1 : 0) + v / lambda)),
      gJ,
    );

    const theta = { w: tensor(Float32Array.from(th), [d, 1], 'f32', device) };
    const task: SupportQueryTask = {
      support: {
        x: tensor(Float32Array.from(xs), [5, d], 'f32', device),
        y: tensor(Float32Array.from(ys), [5, 1], 'f32', device),
      },
      query: {
        x: tensor(Float32Array.from(xq), [4, d], 'f32', device),
        y: tensor(Float32Array.from(yq), [4, 1], 'f32', device),
      },
    };
    try {
      await expectNoLeaks(
        async () => {
          const problem = mseRegressionProblem<{ w: Tensor }>((p, x) => matmul(x, p.w));
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
      for (const s of [task.support, task.query]) [s.x, s.y].forEach((t) => t.dispose());
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
    await expect(
      metaGradientBatch(
        FOMAML({ steps: 1, innerLr: 0.1 }),
        mseRegressionProblem<{ w: Tensor }>((p, x) => matmul(x, p.w)),
        { w: tensor([1], [1, 1], 'f32', getDevice()) },
        [],
      ),
    ).rejects.toThrow(/empty/);
  });
});
