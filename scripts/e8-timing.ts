/**
 * E8's time goal side by side in one process (issue 18 item 7): one meta-gradient of the paper's regressor on a
 * 100-shot CosMixture task at `steps` inner steps, FOMAML and MAML compiled (their readback-free core replayed), and
 * A-MAML with its backward sweep op by op and compiled. Prints medians of `rounds` interleaved rounds, dispatches per
 * call and A-MAML's gradient difference between the two sweeps. `npx tsx scripts/e8-timing.ts [steps] [rounds]`.
 */
import { createNodeDevice } from '@metagrad/tensor/node';
import { AdjointMAML, type MetaProblem } from '@metagrad/meta';
import { type MlpParams, cosMixtureFamily, disposeTree, leaves } from '@metagrad/models';
import { disposeTask, fitScaling, hostEpisodes, regressionProblem, regressor, timedMetaGradient, uploadTask } from '@metagrad/experiments/node';

const [steps = 400, rounds = 3] = process.argv.slice(2).map(Number);
const innerLr = 0.01;
const device = await createNodeDevice();
const episodes = hostEpisodes(cosMixtureFamily, 1, 100, 100, 8);
const task = uploadTask(episodes[0], fitScaling(episodes), device);
const theta = regressor.init(0, device);
const problem = regressionProblem as MetaProblem<MlpParams, typeof task>;

const amaml = (compileSweep: boolean) => {
  const learner = AdjointMAML({ T: steps * innerLr, h: innerLr, forwardMethod: 'dopri5', rtol: 1e-5, atol: 1e-6, compileSweep });
  return async () => (await learner.metaGradient(problem, theta, task)).gradient;
};
// FOMAML and MAML as the E8 section times them: their readback-free core compiled (three warm-up calls inside).
const fomaml = await timedMetaGradient('FOMAML', steps, innerLr, theta, task);
const maml = await timedMetaGradient('MAML', steps, innerLr, theta, task);
const runs: Record<string, () => Promise<unknown>> = {
  FOMAML: fomaml.call,
  MAML: maml.call,
  'A-MAML sweep op by op': async () => disposeTree((await amaml(false)()) as MlpParams),
  'A-MAML sweep compiled': async () => disposeTree((await amaml(true)()) as MlpParams),
};
const times: Record<string, number[]> = {};
const dispatches: Record<string, number> = {};
for (const run of Object.values(runs)) await run(); // warm-up: pipelines and the compiled cores' traces
for (const run of Object.values(runs)) await run();
for (let r = 0; r < rounds; r++) {
  for (const [name, run] of Object.entries(runs)) {
    await device.sync();
    const d0 = device.counters.dispatches;
    const t0 = performance.now();
    await run();
    await device.sync();
    (times[name] ??= []).push(performance.now() - t0);
    dispatches[name] = device.counters.dispatches - d0;
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ga = (await amaml(false)()) as MlpParams;
const gb = (await amaml(true)()) as MlpParams;
let num = 0;
let den = 0;
for (let i = 0; i < leaves(ga).length; i++) {
  const a = await leaves(ga)[i].toArray();
  const b = await leaves(gb)[i].toArray();
  a.forEach((v, k) => ((num += (v - b[k]) ** 2), (den += v * v)));
}
const ms = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, Math.round(median(v))]));
console.log(
  JSON.stringify(
    {
      steps,
      rounds,
      ms,
      dispatches,
      amamlRelDiff: Math.sqrt(num / den),
      ratios: {
        compiledOverFomaml: ms['A-MAML sweep compiled'] / ms.FOMAML,
        compiledOverMaml: ms['A-MAML sweep compiled'] / ms.MAML,
        opByOpOverFomaml: ms['A-MAML sweep op by op'] / ms.FOMAML,
        sweepSpeedup: ms['A-MAML sweep op by op'] / ms['A-MAML sweep compiled'],
      },
    },
    null,
    1,
  ),
);
fomaml.dispose();
maml.dispose();
disposeTask(task);
process.exit(0);
