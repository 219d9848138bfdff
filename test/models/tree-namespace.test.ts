/** @file tree.clone / tree.scale / tree.axpy …: the tree algebra under names that say what they do. */
import { describe, it, expect } from 'vitest';
import * as raw from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { tree } from '@metagrad/models';
import { useDevice } from '../helpers/device';

const device = useDevice();

describe('tree namespace', () => {
  it('clone copies values into new storage without a graph (one buffer copy, no kernel); scale and axpy read as their maths', async () => {
    const d = device();
    const theta = { w: ag.requiresGrad(raw.tensor([1, 2, 3, 4], [2, 2], 'f32', d)), b: raw.tensor([5], [1], 'f32', d) };
    const before = d.counters.dispatches;
    const c = tree.clone(theta);
    expect(d.counters.dispatches).toBe(before);
    expect(c.w.storage).not.toBe(theta.w.storage);
    expect(c.w.requiresGrad).toBe(false);
    expect(Array.from(await c.w.toArray())).toEqual([1, 2, 3, 4]);
    expect(c.w.shape).toEqual([2, 2]);
    const g = tree.scale(c, -0.5);
    const step = tree.axpy(-0.5, c, theta); // θ − ½c
    expect(Array.from(await g.b.toArray())).toEqual([-2.5]);
    expect(Array.from(await step.w.toArray())).toEqual([0.5, 1, 1.5, 2]);
    expect(await tree.norm(c).item()).toBeCloseTo(Math.sqrt(1 + 4 + 9 + 16 + 25), 5);
    tree.dispose([theta, c, g, step]);
  });
});
