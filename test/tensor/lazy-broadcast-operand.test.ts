/**
 * @file Lazy fusion: a pending operand that broadcasts into a larger output (a bias updated every step) is realised
 * first, so an SGD loop's kernels stop growing after its first steps and its values equal eager's bit for bit.
 */
import { describe, it, expect } from 'vitest';
import * as raw from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { axpyTree, crossEntropyMean, disposeTree, fromLeaves, leaves, mlp, requiresGradTree, type MlpParams } from '@metagrad/models';
import { useDevice, withFusion } from '../helpers/device';

const device = useDevice();

/** 30 full-batch SGD steps of an 8-16-4 ReLU MLP; the loss after each step, and the pipeline count after steps 5 and 30. */
async function train(on: boolean): Promise<{ losses: number[]; pipelinesAt5: number; pipelinesAt30: number }> {
  const d = device();
  return withFusion(d, on, async () => {
    const x = raw.tensor(
      Float32Array.from({ length: 32 * 8 }, (_, i) => Math.sin(i * 1.7)),
      [32, 8],
      'f32',
      d,
    );
    const y = raw.tensor(
      Int32Array.from({ length: 32 }, (_, i) => (i * 7) % 4),
      [32],
      'i32',
      d,
    );
    const model = mlp({ sizes: [8, 16, 4], activation: 'relu' });
    const init = model.init(5, d);
    let params: MlpParams = requiresGradTree(init);
    disposeTree(init);
    const losses: number[] = [];
    let pipelinesAt5 = 0;
    for (let step = 1; step <= 30; step++) {
      const next = raw.tidy(() => {
        const loss = crossEntropyMean(model.apply(params, x), y);
        const grads = fromLeaves(params, ag.grad(loss, leaves(params)));
        losses.push(0);
        const l = ag.detach(loss);
        raw.keep(l);
        return { next: ag.noGrad(() => axpyTree(-0.3, grads, params)), l };
      });
      losses[losses.length - 1] = await next.l.item();
      next.l.dispose();
      disposeTree(params);
      params = requiresGradTree(next.next);
      disposeTree(next.next);
      if (step === 5) pipelinesAt5 = d.memory().pipelines;
    }
    const pipelinesAt30 = d.memory().pipelines;
    raw.dispose([x, y]);
    disposeTree(params);
    return { losses, pipelinesAt5, pipelinesAt30 };
  });
}

describe('lazy fusion: broadcast pending operands', () => {
  it('an SGD loop with a broadcast bias compiles no new kernels after its first steps and equals eager bit for bit', async () => {
    const eager = await train(false);
    const fused = await train(true);
    expect(fused.pipelinesAt30).toBe(fused.pipelinesAt5);
    expect(fused.losses).toEqual(eager.losses);
  });
});
