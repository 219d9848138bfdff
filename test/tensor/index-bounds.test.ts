/** @file Out-of-range and negative index values raise IndexOutOfRangeError (naming the op) at the next readback/sync. */
import { describe, it, expect } from 'vitest';
import { IndexOutOfRangeError, InvalidArgumentError, tensor, zeros, ones, tidy, type Tensor } from '@metagrad/tensor';
import { gather, indexSelect, oneHot, scatterAdd } from '@metagrad/tensor/raw';
import { crossEntropy, grad, requiresGrad } from '@metagrad/autograd';
import * as ref from '../../packages/tensor/src/reference/index';
import { useDevice } from '../helpers/device';

const device = useDevice();

const x23 = () => tensor([1, 2, 3, 4, 5, 6], [2, 3]);
const idx = (values: number[], shape: number[]) => tensor(values, shape, 'i32');

/** Each op with a bad index value: the op name and the bound the message must show. */
const cases: { op: string; bound: number; run: (bad: number) => Tensor }[] = [
  { op: 'gather', bound: 3, run: (bad) => gather(x23(), 1, idx([0, bad], [2, 1])) },
  { op: 'indexSelect', bound: 2, run: (bad) => indexSelect(x23(), 0, idx([1, bad], [2])) },
  { op: 'scatterAdd', bound: 3, run: (bad) => scatterAdd(zeros([2, 3]), 1, idx([bad, 1], [2, 1]), ones([2, 1])) },
  { op: 'oneHot', bound: 3, run: (bad) => oneHot(idx([0, bad, 2], [3]), 3) },
];

async function readError(t: Tensor): Promise<unknown> {
  return t.toArray().then(
    () => null,
    (e: unknown) => e,
  );
}

describe('index bounds', () => {
  for (const { op, bound, run } of cases) {
    for (const bad of [bound, bound + 5, -1]) {
      it(`${op} with index ${bad} raises IndexOutOfRangeError at readback, naming the op and values`, async () => {
        const out = tidy(() => run(bad));
        const err = await readError(out);
        out.dispose();
        expect(err).toBeInstanceOf(IndexOutOfRangeError);
        expect(err).toBeInstanceOf(InvalidArgumentError);
        expect((err as IndexOutOfRangeError).op).toBe(op);
        expect((err as Error).message).toContain(`${op}: index ${bad} is out of range [0, ${bound})`);
        // The float64 reference rejects the same input with the same class.
        expect(() => runReference(op, bad)).toThrow(IndexOutOfRangeError);
      });
    }

    it(`${op}: sync() raises too, and the flag is cleared afterwards`, async () => {
      const t = tidy(() => run(bound));
      await expect(device().sync()).rejects.toBeInstanceOf(IndexOutOfRangeError);
      await expect(device().sync()).resolves.toBeUndefined();
      t.dispose();
    });

    it(`${op}: in-range values read back correctly after an error`, async () => {
      const bad = tidy(() => run(bound));
      await expect(bad.toArray()).rejects.toBeInstanceOf(IndexOutOfRangeError);
      bad.dispose();
      const good = tidy(() => run(0));
      const expected = runReference(op, 0);
      expect(Array.from(await good.toArray())).toEqual(Array.from(expected.data));
      good.dispose();
    });
  }

  it('an error is raised once even when the bad op is not the tensor read back', async () => {
    const bad = gather(x23(), 1, idx([0, 9], [2, 1]));
    const other = tensor([7, 8]);
    await expect(other.toArray()).rejects.toThrow(/gather: index 9/);
    expect(Array.from(await other.toArray())).toEqual([7, 8]);
    bad.dispose();
    other.dispose();
  });

  it('indices checked even when the output is empty (indexSelect over x [2, 0]) or the axis is empty', async () => {
    const empty = indexSelect(zeros([2, 0]), 0, idx([5], [1]));
    expect(empty.shape).toEqual([1, 0]);
    await expect(device().sync()).rejects.toThrow(/indexSelect: index 5 is out of range \[0, 2\)/);
    empty.dispose();
    expect(() => indexSelect(zeros([0, 3]), 0, idx([0], [1]))).toThrow(IndexOutOfRangeError);
    expect(() => scatterAdd(zeros([2, 0]), 1, idx([0, 0], [2, 1]), ones([2, 1]))).toThrow(IndexOutOfRangeError);
    const fine = indexSelect(zeros([2, 0]), 0, idx([1, 0], [2]));
    await device().sync();
    fine.dispose();
  });

  it('crossEntropy with label == numClasses raises instead of returning loss 0 and gradient 0', async () => {
    const logits = requiresGrad(tensor([0.5, 1, -1, 2, 0, 0.25], [2, 3]));
    const labels = idx([1, 3], [2]);
    const loss = crossEntropy(logits, labels);
    const [g] = grad(loss, [logits]);
    const err = await loss.item().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IndexOutOfRangeError);
    expect((err as IndexOutOfRangeError).op).toBe('gather');
    expect((err as Error).message).toMatch(/index 3 is out of range \[0, 3\)/);
    for (const t of [logits, labels, loss, g]) t.dispose();
    // A valid batch afterwards is right: −log softmax at the labels, averaged.
    const logits2 = tensor([0, 0, 0, 1, 2, 3], [2, 3]);
    const loss2 = crossEntropy(logits2, idx([0, 2], [2]));
    const lse = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
    expect(await loss2.item()).toBeCloseTo((Math.log(3) + (lse - 3)) / 2, 5);
    logits2.dispose();
    loss2.dispose();
  });
});

function runReference(op: string, bad: number): ref.RefTensor {
  const r = (data: number[], shape: number[]): ref.RefTensor => ({ shape, data: Float64Array.from(data) });
  const x = r([1, 2, 3, 4, 5, 6], [2, 3]);
  if (op === 'gather') return ref.gather(x, 1, r([0, bad], [2, 1]));
  if (op === 'indexSelect') return ref.indexSelect(x, 0, r([1, bad], [2]));
  if (op === 'scatterAdd') return ref.scatterAdd(r([0, 0, 0, 0, 0, 0], [2, 3]), 1, r([bad, 1], [2, 1]), r([1, 1], [2, 1]));
  return ref.oneHot(r([0, bad, 2], [3]), 3);
}
