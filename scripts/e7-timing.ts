/**
 * Times E7's pieces at the paper's inner steps: per method, seconds per meta-iteration (the first, with compilation,
 * apart) and seconds per test task's evaluation. `npx tsx scripts/e7-timing.ts [steps] [mamlSteps] [shots] [iterations] [testTasks]`.
 */
import { createNodeDevice } from '@metagrad/tensor/node';
import { E7_FULL, runAmamlRegression } from '@metagrad/experiments/node';

const [steps = 200, mamlSteps = 20, shots = 50, iterations = 3, testTasks = 2] = process.argv.slice(2).map(Number);
const device = await createNodeDevice();
const stamps: { label: string; t: number }[] = [];
const t0 = performance.now();
await runAmamlRegression(
  device,
  {
    ...E7_FULL,
    families: ['cos-mixture'],
    settings: [{ name: `${shots}shot`, shots, steps, mamlSteps }],
    metaIterations: iterations,
    testTasks,
    curvePoints: 2,
  },
  (label) => {
    stamps.push({ label, t: performance.now() });
    process.stderr.write(`${((performance.now() - t0) / 1000).toFixed(1)} s ${label}\n`);
  },
);
const total = (performance.now() - t0) / 1000;
console.log(
  JSON.stringify({
    steps,
    mamlSteps,
    shots,
    iterations,
    testTasks,
    totalS: total,
    stamps: stamps.map((s) => [s.label.split(' J=')[0], ((s.t - t0) / 1000).toFixed(2)]),
  }),
);
process.exit(0);
