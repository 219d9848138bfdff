/**
 * @file The learners' intermediates ({ intermediates: true }): φ_T against the PyTorch fixture (θ − Reptile's
 * direction is u_n in float64) and, for every learner, φ_T and the inner losses against an independent plain GD loop
 * (or the tracked flow for A-MAML); the tensor cores' [T] losses; nothing returned or leaked without the option.
 */
import { describe, expect, it } from 'vitest';
import { AdjointMAML, type AdjointMamlOptions, FOMAML, MAML, Reptile, iMAML, type MetaLearner, type MetaProblem, type SupportQueryTask } from '@metagrad/meta';
import { tensor } from '@metagrad/tensor';
import { enableGrad, expectNoLeaks, grad, requiresGrad } from '@metagrad/autograd';
import { type ParamTree, disposeTree, fromLeaves, leaves } from '@metagrad/models';
import { useDevice } from '../helpers/device';
import { mamlFixture as fx, mamlFixtureSetup as setup, mamlProblem as problem } from '../helpers/maml-fixture';
import { flat } from '../helpers/meta-tasks';

const getDevice = useDevice();

/** max |a − b| / max |b|. */
const relErr = (a: number[], b: number[]): number => {
  expect(a.length).toBe(b.length);
  return Math.max(...a.map((v, i) => Math.abs(v - b[i]))) / Math.max(...b.map(Math.abs));
};

/**
 * An independent GD loop on the host side of the API: u ← u − α(∇L(u) + λ(u − θ)), with grad() on fresh leaves and
 * plain arithmetic read back each step (float32 on the device, no learner code). Returns u_n and L(u_0..u_{n−1}).
 */
async function referenceGd<P extends ParamTree>(
  p: MetaProblem<P, SupportQueryTask>,
  theta: P,
  task: SupportQueryTask,
  steps: number,
  lr: number,
  prox = 0,
): Promise<{ u: number[]; losses: number[] }> {
  const th = await flat(theta);
  let u = [...th];
  const losses: number[] = [];
  const device = leaves(theta)[0].device;
  const shapes = leaves(theta).map((t) => t.shape);
  for (let k = 0; k < steps; k++) {
    let off = 0;
    const ls = shapes.map((s) => {
      const size = s.reduce((a, b) => a * b, 1);
      const t = requiresGrad(tensor(Float32Array.from(u.slice(off, off + size)), s, 'f32', device));
      off += size;
      return t;
    });
    const L = enableGrad(() => p.innerLoss(fromLeaves(theta, ls), task));
    const gs = grad(L, ls);
    losses.push(await L.item());
    const g = (await Promise.all(gs.map(async (t) => Array.from(await t.toArray())))).flat();
    [L, ...gs, ...ls].forEach((t) => t.dispose());
    u = u.map((v, i) => v - lr * (g[i] + prox * (v - th[i])));
  }
  return { u, losses };
}

describe('intermediates of MAML, FOMAML, Reptile (2-8-8-1 tanh MLP, fixture task)', () => {
  it('MAML φ_T equals the PyTorch fixture (θ − Reptile direction = u_n, float64)', async () => {
    const device = getDevice();
    const s = setup(device);
    try {
      const want = fx.theta.flatMap((t, i) => t.data.map((v, k) => v - fx.reptile[i].data[k]));
      await expectNoLeaks(
        async () => {
          const r = await MAML({ steps: fx.steps, innerLr: fx.innerLr }).metaGradient(problem, s.theta, s.task, {
            intermediates: true,
          });
          expect(relErr(await flat(r.adapted), want)).toBeLessThan(2e-5);
          expect(r.innerLosses).toHaveLength(fx.steps);
          // φ_T has no graph and is the caller's.
          leaves(r.adapted).forEach((t) => expect(t.requiresGrad).toBe(false));
          disposeTree(r.gradient);
          disposeTree(r.adapted);
        },
        device,
        'MAML intermediates',
      );
    } finally {
      s.dispose();
    }
  });

  const learners: [string, () => MetaLearner][] = [
    ['MAML', () => MAML({ steps: 4, innerLr: 0.1 })],
    ['FOMAML', () => FOMAML({ steps: 4, innerLr: 0.1 })],
    ['Reptile', () => Reptile({ steps: 4, innerLr: 0.1 })],
  ];
  for (const [name, make] of learners) {
    it(`${name}: adapted and innerLosses equal an independent GD loop; the tensor core's losses are one [T] tensor`, async () => {
      const device = getDevice();
      const s = setup(device);
      try {
        const ref = await referenceGd(problem, s.theta, s.task, 4, 0.1);
        await expectNoLeaks(
          async () => {
            const learner = make();
            const r = await learner.metaGradient(problem, s.theta, s.task, { intermediates: true });
            expect(relErr(await flat(r.adapted), ref.u)).toBeLessThan(1e-5);
            expect(relErr(r.innerLosses, ref.losses)).toBeLessThan(1e-5);
            disposeTree(r.gradient);
            disposeTree(r.adapted);
            const c = learner.metaGradientTensors!(problem, s.theta, s.task, { intermediates: true });
            expect(c.innerLosses.shape).toEqual([4]);
            expect(relErr(Array.from(await c.innerLosses.toArray()), ref.losses)).toBeLessThan(1e-5);
            expect(relErr(await flat(c.adapted), ref.u)).toBeLessThan(1e-5);
            disposeTree(c.gradient);
            disposeTree(c.adapted);
            c.outerLoss.dispose();
            c.innerLosses.dispose();
            // Without the option nothing extra comes back (and nothing is left behind).
            const plain = await learner.metaGradient(problem, s.theta, s.task);
            expect('adapted' in plain || 'innerLosses' in plain).toBe(false);
            disposeTree(plain.gradient);
          },
          device,
          `${name} intermediates`,
        );
      } finally {
        s.dispose();
      }
    });
  }
});

describe('intermediates of iMAML and A-MAML', () => {
  it('iMAML: adapted is the proximal GD iterate, innerLosses the unregularised support losses', async () => {
    const device = getDevice();
    const s = setup(device);
    try {
      const ref = await referenceGd(problem, s.theta, s.task, 5, 0.1, 2);
      await expectNoLeaks(
        async () => {
          const r = await iMAML({ lambda: 2, cgSteps: 3, steps: 5, innerLr: 0.1 }).metaGradient(problem, s.theta, s.task, { intermediates: true });
          expect(relErr(await flat(r.adapted), ref.u)).toBeLessThan(1e-5);
          expect(relErr(r.innerLosses, ref.losses)).toBeLessThan(1e-5);
          disposeTree(r.gradient);
          disposeTree(r.adapted);
        },
        device,
        'iMAML intermediates',
      );
    } finally {
      s.dispose();
    }
  });

  const amaml: [string, Omit<AdjointMamlOptions, 'T' | 'h'>][] = [
    ['Euler forward, Heun sweep, flat', { forwardMethod: 'euler' }],
    ['Euler forward, Euler sweep, per leaf, recomputed', { forwardMethod: 'euler', backwardMethod: 'euler', flatten: false, recompute: true }],
    ['Euler forward, autograd VJP', { forwardMethod: 'euler', vjp: 'autograd' }],
  ];
  for (const [label, opts] of amaml) {
    it(`A-MAML (${label}): with an Euler forward, u(T) is n GD steps of lr h and innerLosses L(u(t_0..t_n))`, async () => {
      const device = getDevice();
      const s = setup(device);
      try {
        const n = 5;
        const h = 0.1;
        const ref = await referenceGd(problem, s.theta, s.task, n + 1, h);
        await expectNoLeaks(
          async () => {
            const r = await AdjointMAML({ T: n * h, h, ...opts }).metaGradient(problem, s.theta, s.task, {
              intermediates: true,
            });
            // ref.u is u_{n+1}; u(T) = u_n is the state whose loss is ref.losses[n]: check it through its loss and via a GD loop of n.
            const refN = await referenceGd(problem, s.theta, s.task, n, h);
            expect(relErr(await flat(r.adapted), refN.u)).toBeLessThan(1e-5);
            expect(r.innerLosses).toHaveLength(n + 1);
            expect(relErr(r.innerLosses, ref.losses)).toBeLessThan(1e-5);
            disposeTree(r.gradient);
            disposeTree(r.adapted);
          },
          device,
          'A-MAML intermediates',
        );
      } finally {
        s.dispose();
      }
    });
  }
});
