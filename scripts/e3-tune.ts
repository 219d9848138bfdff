/**
 * Tunes EvoGrad's λ learning rate for E3 on a validation split (issue 18: its settings predate the per-batch weight
 * normalisation): one seed outside the report's (100), E3_FULL otherwise, final accuracy on 2000 clean held-out
 * training images (Fashion-MNIST train 58000–59999, never trained on, not the meta set, not the test set).
 * `npx tsx scripts/e3-tune.ts [lr ...]` prints one JSON line per learning rate.
 */
import { createNodeDevice } from '@metagrad/tensor/node';
import { FASHION_MNIST_MEAN, FASHION_MNIST_STD, downsample2x, normalise } from '@metagrad/models';
import { loadFashionMnist } from '@metagrad/models/node';
import { E3_FULL, loadE3Data, runE3Method } from '@metagrad/experiments/node';

const rates = process.argv.slice(2).map(Number);
const device = await createNodeDevice();
const seed = 100;
const full = loadFashionMnist({ split: 'train' });
const per = 28 * 28;
const valImages = normalise(downsample2x(full.images.slice(58000 * per, 60000 * per), 28, 28).images, FASHION_MNIST_MEAN, FASHION_MNIST_STD);
const data = { ...loadE3Data(E3_FULL, seed), testImages: valImages, testLabels: full.labels.slice(58000, 60000) };
for (const lr of rates.length ? rates : [1e-4, 3e-4, 1e-3, 3e-3]) {
  const run = await runE3Method('evograd-k2', data, { ...E3_FULL, lambdaLr: { 'evograd-k2': lr } }, seed, device);
  const best = Math.max(...run.accByEpoch);
  console.log(JSON.stringify({ lr, seed, finalValAcc: run.testAcc, bestValAcc: best, seconds: run.seconds, accByEpoch: run.accByEpoch }));
}
process.exit(0);
