/** One E5 γ tuning run (E5_FULL.tune) and one full seed's timing, printed as JSON: `npx tsx scripts/e5-tune.ts [time]`. */
import { createNodeDevice } from '@metagrad/tensor/node';
import { E5_FULL, tuneGamma } from '@metagrad/experiments/node';

const device = await createNodeDevice();
const t0 = performance.now();
const t = await tuneGamma(E5_FULL, device, (label, detail) => process.stderr.write(`${label} ${detail}\n`));
console.log(JSON.stringify({ ...t, wallS: (performance.now() - t0) / 1000 }));
process.exit(0);
