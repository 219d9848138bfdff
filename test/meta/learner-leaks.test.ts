/**
 * @file No leaks over 100 meta-steps of each learner without a hand-written dispose in the caller: MetaTrainer steps
 * (compiled where the learner has a tensor core), and metaGradient with intermediates inside `scope`, which frees
 * the gradient and φ_T it does not return.
 */
import { describe, expect, it } from 'vitest';
import { AdjointMAML, FOMAML, MAML, MetaTrainer, Reptile, iMAML, mseRegressionProblem, type MetaLearner, type SupportQueryTask } from '@metagrad/meta';
import { type Tensor, scope, tensor } from '@metagrad/tensor';
import { expectNoLeaks, matmul, tanh } from '@metagrad/autograd';
import { sgd, tree } from '@metagrad/models';
import { useDevice } from '../helpers/device';

const getDevice = useDevice();
type W = { w: Tensor };
// A small nonlinear regression so every learner has curvature to work with: ŷ = tanh(x w).
const problem = mseRegressionProblem<W>((p, x) => tanh(matmul(x, p.w)));

const learners: [string, () => MetaLearner][] = [
  ['MAML', () => MAML({ steps: 2, innerLr: 0.1 })],
  ['FOMAML', () => FOMAML({ steps: 2, innerLr: 0.1 })],
  ['Reptile', () => Reptile({ steps: 2, innerLr: 0.1 })],
  ['iMAML', () => iMAML({ lambda: 2, cgSteps: 2, steps: 2, innerLr: 0.1 })],
  ['A-MAML', () => AdjointMAML({ T: 0.1, h: 0.05, forwardMethod: 'euler' })],
];

describe('100 meta-steps of each learner leave nothing behind', () => {
  for (const [name, make] of learners) {
    it(name, async () => {
      const device = getDevice();
      const task: SupportQueryTask = {
        support: {
          x: tensor([0.3, -0.8, 0.5, 0.9, 0.1, -0.4], [3, 2], 'f32', device),
          y: tensor([0.5, -0.2, 0.3], [3, 1], 'f32', device),
        },
        query: {
          x: tensor([0.6, 0.2, -0.5, -0.7], [2, 2], 'f32', device),
          y: tensor([0.1, 0.4], [2, 1], 'f32', device),
        },
      };
      const theta: W = { w: tensor([0.2, -0.1], [2, 1], 'f32', device) };
      const learner = make();
      try {
        // Warm-up (pipelines, compile's trace) outside the leak check.
        const warm = new MetaTrainer(learner, problem, theta, sgd({ lr: 0.05 }));
        for (let i = 0; i < 4; i++) await warm.step([task]);
        warm.dispose();
        await expectNoLeaks(
          async () => {
            const trainer = new MetaTrainer(learner, problem, theta, sgd({ lr: 0.05 }));
            let first = NaN;
            let last = NaN;
            for (let i = 0; i < 100; i++) {
              const { outerLoss } = await trainer.step([task, task]);
              if (i === 0) first = outerLoss;
              last = outerLoss;
              // The intermediates, read inside a scope: the gradient and φ_T it made are freed there.
              if (i % 25 === 0) {
                const losses = await scope(async () => (await learner.metaGradient(problem, trainer.theta, task, { intermediates: true })).innerLosses);
                expect(losses.every(Number.isFinite)).toBe(true);
              }
            }
            expect(last).toBeLessThan(first);
            trainer.dispose();
          },
          device,
          `${name}: 100 meta-steps`,
        );
      } finally {
        tree.dispose([theta, task.support.x, task.support.y, task.query.x, task.query.y]);
      }
    }, 60000);
  }
});
