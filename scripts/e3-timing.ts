/** Seconds per epoch of each E3 method at the full set-up (E3_FULL, 1 epoch): `npx tsx scripts/e3-timing.ts [train]`. */
import { createNodeDevice } from '@metagrad/tensor/node';
import { E3_FULL, E3_METHODS, loadE3Data, runE3Method } from '@metagrad/experiments/node';

const train = Number(process.argv[2] ?? E3_FULL.train);
const cfg = { ...E3_FULL, train, epochs: 1, lrDecayEpochs: [] };
const device = await createNodeDevice();
const data = loadE3Data(cfg, 0);
const out: Record<string, number> = {};
for (const m of E3_METHODS) {
  const r = await runE3Method(m, data, cfg, 0, device);
  out[m] = r.seconds;
  process.stderr.write(`${m} ${r.seconds.toFixed(1)} s/epoch acc ${r.testAcc}\n`);
}
const perSeed = Object.values(out).reduce((a, b) => a + b, 0) * E3_FULL.epochs;
console.log(JSON.stringify({ train, secondsPerEpoch: out, estimatedSecondsPerSeed: perSeed }));
process.exit(0);
