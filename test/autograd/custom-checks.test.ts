/**
 * @file customVjp validates what a hand-written backward returns: one gradient (or null) per input, each shaped
 * like its input. A short list used to make a used input look unused; extra entries were dropped silently.
 */
import { describe, it, expect } from 'vitest';
import * as raw from '@metagrad/tensor/raw';
import { InvalidArgumentError, ShapeError, DTypeError, type Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { useDevice } from '../helpers/device';

const device = useDevice();
const t = (data: number[], shape = [data.length]) => raw.tensor(data, shape, 'f32', device());
const values = async (x: Tensor | null): Promise<number[]> => Array.from(await x!.toArray());

/** x·y with a backward that returns whatever `grads` makes of the two correct gradients. */
function product(grads: (gx: Tensor, gy: Tensor) => unknown[]) {
  return ag.customVjp(
    (x: Tensor, y: Tensor) => ({ output: raw.mul(x, y) }),
    (g, { inputs: [x, y] }) => grads(raw.mul(g, y), raw.mul(g, x)) as (Tensor | null)[],
    { name: 'product' },
  );
}

describe('customVjp checks its backward', () => {
  it('too few gradients: a named error with the op, the input count and the count returned', () => {
    const op = product((gx) => [gx]);
    const x = ag.requiresGrad(t([1, 2]));
    const y = ag.requiresGrad(t([3, 4]));
    const out = ag.sum(op(x, y));
    const before = ag.memory(device());
    let error: unknown;
    try {
      ag.grad(out, [x, y], { retainGraph: true });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toMatch(/'product'/);
    expect((error as Error).message).toMatch(/2 inputs/);
    expect((error as Error).message).toMatch(/returned 1 gradient/);
    ag.assertNoLeaks(device(), before, 'failed custom backward');
    raw.dispose([x, y, out]);
  });

  it('too many gradients is an error too (and the extra tensors are not leaked)', () => {
    const op = product((gx, gy) => [gx, gy, raw.add(gx, gy)]);
    const x = ag.requiresGrad(t([1, 2]));
    const y = ag.requiresGrad(t([3, 4]));
    const out = ag.sum(op(x, y));
    const before = ag.memory(device());
    expect(() => ag.grad(out, [x, y], { retainGraph: true })).toThrow(/'product'.*2 inputs.*returned 3 gradients/);
    ag.assertNoLeaks(device(), before, 'failed custom backward');
    raw.dispose([x, y, out]);
  });

  it('a gradient shaped unlike its input is a ShapeError naming the op and the input', () => {
    const op = product((gx, gy) => [gx, raw.reshape(gy, [1, 2])]);
    const x = ag.requiresGrad(t([1, 2]));
    const y = ag.requiresGrad(t([3, 4]));
    const out = ag.sum(op(x, y));
    expect(() => ag.grad(out, [x, y])).toThrow(ShapeError);
    const out2 = ag.sum(op(x, y));
    expect(() => ag.grad(out2, [x, y])).toThrow(/'product'.*\[1, 2\] for input 1.*\[2\]/);
    raw.dispose([x, y, out, out2]);
  });

  it('a non-tensor entry or a non-f32 gradient is rejected by name', () => {
    const x = ag.requiresGrad(t([1, 2]));
    const y = ag.requiresGrad(t([3, 4]));
    const out = ag.sum(product((gx) => [gx, 0])(x, y));
    expect(() => ag.grad(out, [x, y])).toThrow(InvalidArgumentError);
    const out2 = ag.sum(product((gx, gy) => [gx, raw.cast(gy, 'i32')])(x, y));
    expect(() => ag.grad(out2, [x, y])).toThrow(DTypeError);
    raw.dispose([x, y, out, out2]);
  });

  it("the forward's intermediates are freed (its output and saved tensors survive)", async () => {
    const cube = ag.customVjp(
      (z: Tensor) => {
        const z2 = raw.mul(z, z);
        const z3 = raw.mul(z2, z); // an intermediate the forward does not dispose
        return { output: raw.mulScalar(z3, 1), saved: [z2] };
      },
      (gy, { saved: [z2] }) => [raw.mulScalar(raw.mul(gy, z2), 3)],
      { name: 'cube' },
    );
    const x = ag.requiresGrad(t([1, 2]));
    const before = ag.memory(device());
    const y = cube(x);
    const loss = ag.sum(y);
    const [g] = ag.grad(loss, [x]);
    expect(await values(g)).toEqual([3, 12]);
    raw.dispose([y, loss, g]);
    ag.assertNoLeaks(device(), before, 'recorded customVjp');
    const c = t([1, 2]); // no input requires grad: nothing recorded, nothing saved
    const before2 = ag.memory(device());
    cube(c).dispose();
    ag.assertNoLeaks(device(), before2, 'unrecorded customVjp');
    raw.dispose([x, c]);
  });

  it('null for an input stays allowed (no gradient through it), and correct backwards still work', async () => {
    const x = ag.requiresGrad(t([1, 2]));
    const y = ag.requiresGrad(t([3, 4]));
    const out = ag.sum(product((gx) => [gx, null])(x, y));
    const [gx, gy] = ag.grad(out, [x, y], { allowUnused: true });
    expect(await values(gx)).toEqual([3, 4]);
    expect(gy).toBeNull();
    const out2 = ag.sum(product((a, b) => [a, b])(x, y));
    const [hx, hy] = ag.grad(out2, [x, y]);
    expect(await values(hx)).toEqual([3, 4]);
    expect(await values(hy)).toEqual([1, 2]);
    raw.dispose([x, y, out, gx, out2, hx, hy]);
  });
});
