import { createNodeDevice } from '@metagrad/tensor/node';
import { E7_FULL, runAmamlRegression } from './examples/experiments/amaml-regression';
const device = await createNodeDevice();
const cfg = { ...E7_FULL, families: ['alpine' as const], settings: [{ name: '100shot-100val', shots: 100, steps: 100, mamlSteps: 10 }] };
const t0 = performance.now();
const res = await runAmamlRegression(device, cfg, (l) => process.stderr.write(l + '\n'));
console.log(JSON.stringify({ seconds: (performance.now() - t0) / 1000, final: res.final }, null, 1));
device.destroy();
