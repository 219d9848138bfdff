/**
 * @file In-place optimiser classes and aliasing: a gradient that shares storage with a parameter the step writes
 * (the parameter itself, a view of it) is refused by name before any dispatch; it used to surface as a raw WebGPU
 * usage-conflict error that also poisoned the next op.
 */
import { describe, it, expect } from 'vitest';
import * as raw from '@metagrad/tensor/raw';
import { InvalidArgumentError } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { Adam, SGD } from '@metagrad/models';
import { useDevice } from '../helpers/device';

const device = useDevice();
const t = (data: number[]) => raw.tensor(data, [data.length], 'f32', device());

describe('in-place optimisers refuse gradients that alias written storage', () => {
  type Params = { x: raw.Tensor; y: raw.Tensor };
  const optimisers: [string, (p: Params) => SGD | Adam][] = [
    ['SGD', (p) => new SGD(p, { lr: 1, momentum: 0.9 })],
    ['Adam', (p) => new Adam(p, { lr: 1 })],
  ];
  for (const [name, make] of optimisers) {
    it(`${name}: the parameter itself, a view of it, or another parameter as a gradient`, async () => {
      const x = t([1, 2]);
      const y = t([3, 4]);
      const opt = make({ x, y });
      const g = t([1, 1]);
      const view = ag.reshape(x, [2]);
      const before = device().counters.dispatches;
      expect(() => opt.step({ x, y: g })).toThrow(InvalidArgumentError);
      expect(() => opt.step({ x: view, y: g })).toThrow(/gradient 0 shares its storage with parameter 0/);
      expect(() => opt.step({ x: g, y: x })).toThrow(/gradient 1 shares its storage with parameter 0/);
      expect(device().counters.dispatches).toBe(before);
      // Nothing was written and the device is still healthy.
      expect(Array.from(await x.toArray())).toEqual([1, 2]);
      expect(Array.from(await raw.add(x, y).toArray())).toEqual([4, 6]);
      opt.step({ x: g, y: g }); // an ordinary step still works
      expect((await x.toArray())[0]).not.toBe(1);
      opt.dispose();
      raw.dispose([x, y, g, view]);
    });
  }
});
