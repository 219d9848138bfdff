/** Every reference op must leave its inputs untouched and return storage it does not share with them. */
import { describe, expect, it } from 'vitest';
import * as R from '../../packages/tensor/src/reference/index';
import { T, rand } from './helpers';

describe('purity', () => {
  it('no op mutates or aliases its inputs', () => {
    const x = rand([2, 4, 5, 5], 1);
    const w = rand([4, 2, 3, 3], 2);
    const m = rand([3, 4], 3);
    const idx = T([0, 2, 1, 0], [1, 4]);
    const grid = rand([2, 3, 3, 2], 4);
    const inputs = [x, w, m, idx, grid];
    const before = inputs.map((t) => ({ shape: [...t.shape], data: t.data.slice() }));
    const outs = [
      R.add(m, m),
      R.exp(m),
      R.where(m, m, m),
      R.cast(m, 'i32'),
      R.sum(m, [0]),
      R.softmax(m, 1),
      R.logsumexp(m, [1]),
      R.argmax(m, 1),
      R.reshape(m, [-1]),
      R.permute(m, [1, 0]),
      R.expand(m, [2, 3, 4]),
      R.slice(m, [0], [2]),
      R.pad(m, [
        [1, 1],
        [0, 0],
      ]),
      R.concat([m, m], 0),
      R.flip(m, [0]),
      R.gather(m, 1, T([0, 1, 2, 3], [1, 4])),
      R.scatterAdd(m, 0, idx, m),
      R.indexSelect(m, 0, T([1])),
      R.oneHot(T([1, 2]), 3),
      R.matmul(m, m, { transB: true }),
      R.conv2d(x, w, { padding: 1, groups: 2 }),
      R.maxPool2d(x, { kernel: 2 }),
      R.avgPool2d(x, { kernel: 2 }),
      R.gridSample(x, grid),
      R.maxPool2dBackward(R.maxPool2d(x, { kernel: 2 }), x, { kernel: 2 }),
    ];
    inputs.forEach((t, i) => expect(t).toEqual(before[i]));
    for (const o of outs) for (const t of inputs) expect(o.data.buffer).not.toBe(t.data.buffer);
  });
});
