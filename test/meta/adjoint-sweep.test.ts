/**
 * @file A-MAML's compiled backward sweep (one replayed plan per tracked state) gives the op-by-op sweep's meta-gradient
 * on the paper's tanh regressor, replays all middle states, leaves nothing behind, and reports the memory it costs.
 */
import { describe, expect, it } from 'vitest';
import { AdjointMAML, type MetaProblem, type SupportQueryTask, mseRegressionProblem } from '@metagrad/meta';
import { type Device, tensor } from '@metagrad/tensor';
import { type MlpParams, disposeTree, leaves, tanhRegressor } from '@metagrad/models';
import { useDevice } from '../helpers/device';

const getDevice = useDevice();
const regressor = tanhRegressor({ inputs: 2, hidden: 16, outputs: 1 });
const problem: MetaProblem<MlpParams, SupportQueryTask> = mseRegressionProblem((p: MlpParams, x) => regressor.apply(p, x));

function sinTask(device: Device, n: number, phase: number): SupportQueryTask {
  const set = (offset: number) => {
    const x = Array.from({ length: 2 * n }, (_, i) => Math.sin(1.7 * i + offset));
    const y = Array.from({ length: n }, (_, i) => Math.sin(x[2 * i] + phase) * Math.cos(x[2 * i + 1]));
    return { x: tensor(x, [n, 2], 'f32', device), y: tensor(y, [n, 1], 'f32', device) };
  };
  return { support: set(0.3), query: set(1.1) };
}

const flat = async (tree: MlpParams): Promise<number[]> => (await Promise.all(leaves(tree).map(async (t) => Array.from(await t.toArray())))).flat();

describe('A-MAML compiled backward sweep', () => {
  it('matches the op-by-op sweep, replays every middle state, and returns memory to where it was', async () => {
    const device = getDevice();
    const task = sinTask(device, 20, 0.4);
    const theta = regressor.init(3, device);
    const steps = 30;
    const run = async (compileSweep: boolean) => {
      await device.sync();
      const before = device.memory();
      device.resetPeak();
      const r = await AdjointMAML({ T: steps * 0.05, h: 0.05, compileSweep }).metaGradient(problem, theta, task);
      const g = await flat(r.gradient);
      disposeTree(r.gradient);
      await device.sync();
      const after = device.memory();
      return {
        g,
        stats: r.stats,
        peak: after.peakBytesInUse - before.bytesInUse,
        leaked: after.liveTensors - before.liveTensors,
        bytes: after.bytesInUse - before.bytesInUse,
      };
    };
    try {
      const eager = await run(false);
      const compiled = await run(true);
      expect(eager.stats.replayedStates).toBeUndefined();
      // States 1..n−1 go through the plan: one eager call and two traced ones, the rest replayed.
      expect(compiled.stats.replayedStates).toBe(steps - 1 - 3);
      expect(compiled.stats.hvps).toBe(eager.stats.hvps);
      const norm = Math.sqrt(eager.g.reduce((s, v) => s + v * v, 0));
      const diff = Math.sqrt(eager.g.reduce((s, v, i) => s + (v - compiled.g[i]) ** 2, 0));
      expect(norm).toBeGreaterThan(1e-3);
      expect(diff / norm).toBeLessThan(1e-5);
      for (const r of [eager, compiled]) {
        expect(r.leaked).toBe(0);
        expect(r.bytes).toBe(0);
      }
      // The plan's arena is one state's intermediates without pool reuse: the price of the replay, measured here.
      console.info(`A-MAML sweep peak bytes: op by op ${eager.peak}, compiled ${compiled.peak}`);
    } finally {
      disposeTree(theta);
      [task.support.x, task.support.y, task.query.x, task.query.y].forEach((t) => t.dispose());
    }
  });
});
