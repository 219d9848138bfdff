/** @file End-to-end: an MLP memorises 64 real Fashion-MNIST examples with plain full-batch SGD (axpyTree). */
import { describe, expect, it } from 'vitest';
import * as ag from '@metagrad/autograd';
import * as raw from '@metagrad/tensor';
import { type MlpParams, accuracy, axpyTree, crossEntropyMean, disposeTree, fromLeaves, leaves, mlp, requiresGradTree } from '@metagrad/models';
import { loadFashionMnist } from '@metagrad/models/node';
import { useDevice } from '../helpers/device';

const device = useDevice();

describe('memorisation', () => {
  it('MLP 784-128-10 fits 64 Fashion-MNIST training images to 100% accuracy', async () => {
    const data = loadFashionMnist({ split: 'train', limit: 64 });
    const x = raw.tensor(data.images, [64, 784], 'f32', device());
    const y = raw.tensor(data.labels, [64], 'i32', device());
    const model = mlp({ sizes: [784, 128, 10], activation: 'relu' });
    const init = model.init(2026, device());
    let params: MlpParams = requiresGradTree(init);
    disposeTree(init);
    const lossAt = async (p: MlpParams) => {
      const l = raw.tidy(() => ag.noGrad(() => crossEntropyMean(model.apply(p, x), y)));
      const v = await l.item();
      l.dispose();
      return v;
    };
    const first = await lossAt(params);
    const live = device().memory().liveTensors;
    // Check every 10 steps and stop once memorised (the bound keeps a regression from running forever).
    let steps = 0;
    let last = first;
    while (steps < 200 && !(steps > 0 && steps % 10 === 0 && (last = await lossAt(params)) < 0.05)) {
      steps++;
      const next = raw.tidy(() => {
        const loss = crossEntropyMean(model.apply(params, x), y);
        const grads = fromLeaves(params, ag.grad(loss, leaves(params)));
        return ag.noGrad(() => axpyTree(-0.5, grads, params));
      });
      disposeTree(params);
      params = requiresGradTree(next);
      disposeTree(next);
    }
    // Steady state: each step frees what it made (the parameter count stays the same).
    expect(device().memory().liveTensors).toBe(live);
    last = await lossAt(params);
    const logits = ag.noGrad(() => model.apply(params, x));
    const acc = await accuracy(logits, y);
    expect(first).toBeGreaterThan(2);
    expect(last).toBeLessThan(0.05);
    expect(acc).toBe(1);
    console.log(`memorise: loss ${first.toFixed(3)} → ${last.toFixed(4)} in ${steps} SGD steps`);
    raw.dispose([x, y, logits]);
    disposeTree(params);
  });
});
