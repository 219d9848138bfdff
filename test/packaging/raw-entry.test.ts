/** @file A plain import can never drop gradients: the raw, non-recording ops live only in @metagrad/tensor/raw. */
import { expect, it } from 'vitest';
import * as main from '@metagrad/tensor';
import * as raw from '@metagrad/tensor/raw';
import * as autograd from '@metagrad/autograd';

it('the main entry of @metagrad/tensor exports no op that autograd also exports; /raw has them all', () => {
  const shared = Object.keys(raw).filter((name) => !(name in main) && name in autograd);
  expect(shared.length).toBeGreaterThan(60); // add, mul, matmul, sum, conv2d, … (73 when this was written)
  for (const name of ['add', 'mul', 'matmul', 'sum', 'exp', 'reshape', 'concat', 'conv2d']) {
    expect(name in main, `${name} in @metagrad/tensor`).toBe(false);
    expect(typeof (raw as Record<string, unknown>)[name], `${name} in @metagrad/tensor/raw`).toBe('function');
  }
  // Creation functions stay in the main entry.
  for (const name of ['tensor', 'zeros', 'ones', 'full', 'normal', 'tidy', 'scope']) expect(name in main, name).toBe(true);
});
