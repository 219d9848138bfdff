/**
 * @file E7's meta-test adaptation of all tasks at once (`adaptAllTasks`) gives each task's nRMSE curve of plain `adapt`
 * run task by task, and leaves no tensors behind.
 */
import { describe, expect, it } from 'vitest';
import { adapt } from '@metagrad/meta';
import { alpineFamily, disposeTree } from '@metagrad/models';
import { adaptAllTasks, disposeTask, fitScaling, hostEpisodes, nrmseFromScaledMse, regressionProblem, regressor, uploadTask } from '@metagrad/experiments/node';
import { useDevice } from '../helpers/device';

const getDevice = useDevice();

describe('E7 batched meta-test adaptation', () => {
  it('matches adapt() task by task at every evaluated step, with nothing leaked', async () => {
    const device = getDevice();
    const eps = hostEpisodes(alpineFamily, 4, 12, 20, 31);
    const scaling = fitScaling(eps);
    const tasks = eps.map((e) => uploadTask(e, scaling, device));
    const theta = regressor.init(5, device);
    const evalAt = [0, 3, 7, 15];
    try {
      const before = device.memory().liveTensors;
      const batched = await adaptAllTasks(theta, tasks, { steps: 15, innerLr: 0.05, evalAt, scaling });
      expect(device.memory().liveTensors).toBe(before);
      const one: number[][] = [];
      for (const task of tasks) {
        one.push(
          await adapt(regressionProblem, theta, task, {
            steps: 15,
            innerLr: 0.05,
            evalAt,
            evaluate: async (p) => {
              const l = regressionProblem.outerLoss(p, task);
              const v = await l.item();
              l.dispose();
              return nrmseFromScaledMse(v, task, scaling);
            },
          }),
        );
      }
      const mean = evalAt.map((_, i) => one.reduce((s, c) => s + c[i], 0) / tasks.length);
      for (let i = 0; i < evalAt.length; i++) expect(batched.curve[i]).toBeCloseTo(mean[i], 4);
      batched.perTask.forEach((v, k) => expect(v).toBeCloseTo(one[k][evalAt.length - 1], 4));
      // Adaptation moved the tasks: the check is not comparing the starting point with itself.
      expect(Math.abs(batched.curve[3] - batched.curve[0])).toBeGreaterThan(1e-3);
    } finally {
      disposeTree(theta);
      tasks.forEach(disposeTask);
    }
  });
});
