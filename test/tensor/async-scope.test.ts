/** @file scope(): the async-safe tidy — frees what an async body made across its awaits, keeps its result and keep()-ed tensors. */
import { describe, it, expect } from 'vitest';
import * as raw from '@metagrad/tensor/raw';
import type { Tensor } from '@metagrad/tensor';
import { useDevice } from '../helpers/device';

const device = useDevice();

describe('scope (async tidy)', () => {
  it('frees tensors made before and after awaits, keeps the result tree and keep()-ed tensors', async () => {
    const d = device();
    const before = d.memory().liveTensors;
    let kept: Tensor | undefined;
    const out = await raw.scope(async () => {
      const a = raw.full([4], 1, 'f32', d);
      await a.toArray();
      const b = raw.add(a, a);
      await Promise.resolve();
      kept = raw.keep(raw.mulScalar(b, 3));
      const inner = raw.tidy(() => raw.add(b, raw.full([4], 1, 'f32', d)));
      return { sum: raw.add(inner, b), n: 4 };
    });
    expect(Array.from(await out.sum.toArray())).toEqual([5, 5, 5, 5]);
    expect(Array.from(await kept!.toArray())).toEqual([6, 6, 6, 6]);
    expect(d.memory().liveTensors).toBe(before + 2);
    raw.dispose([out, kept]);
    expect(d.memory().liveTensors).toBe(before);
  });

  it('on a throw frees everything the body made, and nested scopes free their own', async () => {
    const d = device();
    const before = d.memory().liveTensors;
    await expect(
      raw.scope(async () => {
        raw.full([4], 1, 'f32', d);
        await Promise.resolve();
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(d.memory().liveTensors).toBe(before);
    const outer = await raw.scope(async () => {
      const x = raw.full([2], 2, 'f32', d);
      const y = await raw.scope(async () => raw.mul(x, raw.full([2], 3, 'f32', d)));
      expect(d.memory().liveTensors).toBe(before + 2); // x and y; the inner scope's temporary is gone
      return raw.add(y, x);
    });
    expect(Array.from(await outer.toArray())).toEqual([8, 8]);
    expect(d.memory().liveTensors).toBe(before + 1);
    outer.dispose();
  });
});
