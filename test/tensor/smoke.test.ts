import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { createNodeDevice } from '@metagrad/tensor/node';
import { tensor, zeros, full, type Device } from '@metagrad/tensor';

let device: Device;
beforeAll(async () => { device = await createNodeDevice(); });
afterAll(() => device?.destroy());

describe('smoke', () => {
  it('uploads and reads back', async () => {
    const t = tensor([1, 2, 3, 4], [2, 2]);
    expect(Array.from(await t.toArray())).toEqual([1, 2, 3, 4]);
    const z = full([1000], 2.5);
    const a = await z.toArray();
    expect(a.length).toBe(1000);
    expect(a.every((v) => v === 2.5)).toBe(true);
    t.dispose(); z.dispose();
    expect(device.memory().liveTensors).toBe(0);
    console.log(device.adapter);
  });
});
