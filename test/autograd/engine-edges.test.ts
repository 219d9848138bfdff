/** @file Engine edge cases found while auditing issue 14: a leaf whose requiresGrad was turned off after recording. */
import { describe, it, expect } from 'vitest';
import * as raw from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { useDevice } from '../helpers/device';

const device = useDevice();

describe('leaves turned off after recording', () => {
  it('backward() does not write .grad into a leaf that no longer requires grad (torch skips it too)', async () => {
    const x = ag.requiresGrad(raw.tensor([1, 2], [2], 'f32', device()));
    const w = ag.requiresGrad(raw.tensor([3, 4], [2], 'f32', device()));
    const y = ag.sum(ag.mul(x, w));
    ag.requiresGrad(x, false);
    ag.backward(y);
    expect(x.grad).toBeNull();
    expect(Array.from(await w.grad!.toArray())).toEqual([1, 2]);
    raw.dispose([x, w, y]);
  });
});
