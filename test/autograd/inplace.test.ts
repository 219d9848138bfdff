/**
 * @file In-place updates and autograd: a tensor saved for backward and then overwritten in place (an optimiser
 * step) makes the backward throw InPlaceModificationError (PyTorch's version counters), never a wrong gradient.
 */
import { describe, it, expect } from 'vitest';
import * as raw from '@metagrad/tensor/raw';
import { InPlaceModificationError, type Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { Adam, SGD } from '@metagrad/models';
import { useDevice } from '../helpers/device';

const device = useDevice();
const t = (data: number[]) => raw.tensor(data, [data.length], 'f32', device());
const values = async (x: Tensor | null): Promise<number[]> => Array.from(await x!.toArray());

/** The case: x = [1, 2], loss = Σ x·x recorded, then one SGD step of lr 1 with gradient [10, 10]. */
function recordThenStep(): { x: Tensor; loss: Tensor; opt: SGD; step: Tensor } {
  const x = ag.requiresGrad(t([1, 2]));
  const loss = ag.sum(ag.mul(x, x));
  const opt = new SGD({ x }, { lr: 1 });
  const step = t([10, 10]);
  opt.step({ x: step });
  return { x, loss, opt, step };
}

describe('in-place modification of saved tensors', () => {
  it('grad through a graph recorded before SGD.step throws a named error (was [-18, -16])', async () => {
    const { x, loss, opt, step } = recordThenStep();
    expect(await values(x)).toEqual([-9, -8]); // the step did happen
    let error: unknown;
    try {
      ag.grad(loss, [x]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InPlaceModificationError);
    const message = (error as Error).message;
    expect(message).toMatch(/'mul'/);
    expect(message).toMatch(/\[2\]/);
    expect(message).toMatch(/version 1/);
    expect(message).toMatch(/version 0/);
    expect(message).toMatch(/before the optimiser step|clone/);
    opt.dispose();
    raw.dispose([x, loss, step]);
  });

  it('backward() raises too, and leaves .grad untouched', () => {
    const { x, loss, opt, step } = recordThenStep();
    expect(() => ag.backward(loss)).toThrow(InPlaceModificationError);
    expect(x.grad).toBeNull();
    opt.dispose();
    raw.dispose([x, loss, step]);
  });

  it('the gradient taken before the step is right, and a graph recorded after it is fine', async () => {
    const x = ag.requiresGrad(t([1, 2]));
    const opt = new SGD({ x }, { lr: 0.5 });
    const loss = ag.sum(ag.mul(x, x));
    const [g] = ag.grad(loss, [x]);
    expect(await values(g)).toEqual([2, 4]);
    opt.step({ x: g });
    expect(await values(x)).toEqual([0, 0]);
    const loss2 = ag.sum(ag.mul(ag.addScalar(x, 1), x)); // (x + 1)·x → 2x + 1 at the new x
    const [g2] = ag.grad(loss2, [x]);
    expect(await values(g2)).toEqual([1, 1]);
    opt.dispose();
    raw.dispose([x, loss, g, loss2, g2]);
  });

  it('an op that saved nothing of the modified tensor still differentiates (as torch)', async () => {
    const { x, loss: unused, opt, step } = recordThenStep();
    unused.dispose();
    const x2 = ag.requiresGrad(t([3, 4]));
    const y = ag.sum(ag.add(x, x2)); // add saves neither input
    opt.step({ x: step });
    const [gx, gx2] = ag.grad(y, [x, x2]);
    expect(await values(gx)).toEqual([1, 1]);
    expect(await values(gx2)).toEqual([1, 1]);
    opt.dispose();
    raw.dispose([x, x2, y, gx, gx2, step]);
  });

  it('a gradient that does not read the modified tensor still runs, as torch (it only unpacks what it uses)', async () => {
    const X = t([1, 2, 3, 4]);
    const Xm = raw.reshape(X, [2, 2]); // data: needs no gradient
    const W = ag.requiresGrad(raw.tensor([1, 0, 0, 1], [2, 2], 'f32', device()));
    const loss = ag.sum(ag.matmul(Xm, W)); // matmul saves X and W; dW = Xᵀ·1 reads only X
    const loss2 = ag.sum(ag.mul(W, Xm)); // dW = X
    const opt = new SGD({ W }, { lr: 1 });
    const g = raw.tensor([1, 1, 1, 1], [2, 2], 'f32', device());
    opt.step({ W: g });
    const [gW] = ag.grad(loss, [W]);
    expect(await values(gW)).toEqual([4, 4, 6, 6]);
    const [gW2] = ag.grad(loss2, [W]);
    expect(await values(gW2)).toEqual([1, 2, 3, 4]);
    opt.dispose();
    raw.dispose([X, Xm, W, loss, loss2, g, gW, gW2]);
  });

  it('a VJP that reads the modified tensor for another input still raises (the gradient of the data)', () => {
    const X = ag.requiresGrad(raw.tensor([1, 2, 3, 4], [2, 2], 'f32', device()));
    const W = ag.requiresGrad(raw.tensor([1, 0, 0, 1], [2, 2], 'f32', device()));
    const loss = ag.sum(ag.matmul(X, W)); // dX = 1·Wᵀ reads W
    const opt = new SGD({ W }, { lr: 1 });
    const g = raw.tensor([1, 1, 1, 1], [2, 2], 'f32', device());
    opt.step({ W: g });
    expect(() => ag.grad(loss, [X], { retainGraph: true })).toThrow(/'matmul'.*saved tensor 1.*version 1.*version 0/);
    const [gW] = ag.grad(loss, [W], { retainGraph: true }); // dW = Xᵀ·1 needs only X
    opt.dispose();
    raw.dispose([X, W, loss, g, gW]);
  });

  it('a reshaped view shares the version: modifying the base invalidates a graph that saved the view', () => {
    const x = ag.requiresGrad(t([1, 2, 3, 4]));
    const view = ag.reshape(x, [2, 2]);
    const loss = ag.sum(ag.exp(view)); // exp saves its output, not the view; mul saves the view itself
    const loss2 = ag.sum(ag.mul(view, view));
    const opt = new Adam({ x }, { lr: 0.1 });
    const g = t([1, 1, 1, 1]);
    opt.step({ x: g });
    const [gx] = ag.grad(loss, [x]); // exp's saved output is its own storage: not modified
    expect(() => ag.grad(loss2, [x])).toThrow(InPlaceModificationError);
    opt.dispose();
    raw.dispose([x, view, loss, loss2, g, gx]);
  });

  it('second order: an HVP operator built before a step throws instead of using the new values', async () => {
    const x = ag.requiresGrad(t([1, 2]));
    const f = (z: Tensor) => ag.sum(ag.mul(ag.mul(z, z), z)); // Σ z³: H = diag(6z)
    const op = new ag.HvpOperator(f, [x]);
    const v = t([1, 1]);
    const [before] = op.apply([v]);
    expect(await values(before)).toEqual([6, 12]);
    const opt = new SGD({ x }, { lr: 1 });
    const g = t([1, 1]);
    opt.step({ x: g });
    expect(() => op.apply([v])).toThrow(InPlaceModificationError);
    op.dispose();
    opt.dispose();
    raw.dispose([x, v, before, g]);
  });

  it('second order: the gradient graph (createGraph) saved the parameter too', () => {
    const x = ag.requiresGrad(t([1, 2]));
    const loss = ag.sum(ag.mul(ag.mul(x, x), x));
    const [g1] = ag.grad(loss, [x], { createGraph: true }); // the forward's saved tensors are freed... kept by g1's graph
    const gsum = ag.sum(g1);
    const opt = new SGD({ x }, { lr: 1 });
    const step = t([1, 1]);
    opt.step({ x: step });
    expect(() => ag.grad(gsum, [x])).toThrow(InPlaceModificationError);
    opt.dispose();
    raw.dispose([x, loss, g1, gsum, step]);
  });

  it('second order through max-pooling: the argmax positions come from the saved input, so a step invalidates them', () => {
    const x = ag.requiresGrad(raw.tensor([1, 4, 3, 2], [1, 1, 2, 2], 'f32', device()));
    const w = ag.requiresGrad(raw.tensor([5], [1, 1, 1, 1], 'f32', device()));
    const loss = ag.sum(ag.mul(ag.maxPool2d(x, { kernel: 2 }), w));
    // g1 = maxPool2dBackward(w, x) saves x; d/dw Σ g1² reads x only through that node's argmax positions.
    const [g1] = ag.grad(loss, [x], { createGraph: true });
    const gsum = ag.sum(ag.square(g1));
    const opt = new SGD({ x }, { lr: 1 });
    const step = raw.tensor([-10, 0, 0, 0], [1, 1, 2, 2], 'f32', device()); // moves the maximum to another position
    opt.step({ x: step });
    expect(() => ag.grad(gsum, [w])).toThrow(/'maxPool2dBackward'.*version 1/);
    opt.dispose();
    raw.dispose([x, w, loss, g1, gsum, step]);
  });

  it('a customVjp backward that reads a modified input raises; the op is named', () => {
    const cube = ag.customVjp(
      (z: Tensor) => ({ output: raw.mul(raw.mul(z, z), z) }),
      (gy, { inputs: [z] }) => [raw.mul(gy, raw.mulScalar(raw.square(z), 3))],
      { name: 'cube' },
    );
    const x = ag.requiresGrad(t([1, 2]));
    const loss = ag.sum(cube(x));
    const opt = new SGD({ x }, { lr: 1 });
    const step = t([1, 1]);
    opt.step({ x: step });
    expect(() => ag.grad(loss, [x])).toThrow(/customVjp 'cube'.*saved tensor 0.*version 1/);
    opt.dispose();
    raw.dispose([x, loss, step]);
  });

  it('the check costs no dispatch and no readback', () => {
    const { x, loss, opt, step } = recordThenStep();
    loss.dispose();
    const y = ag.mul(x, x);
    opt.step({ x: step });
    const seed = t([1, 1]);
    const before = { ...device().counters };
    expect(() => ag.grad(y, [x], { gradOutputs: seed })).toThrow(InPlaceModificationError);
    expect(device().counters.dispatches).toBe(before.dispatches);
    expect(device().counters.readbacks).toBe(before.readbacks);
    opt.dispose();
    raw.dispose([x, y, step, seed]);
  });

  it('a failed backward frees what it allocated', async () => {
    const { x, loss, opt, step } = recordThenStep();
    const before = ag.memory(device());
    expect(() => ag.grad(loss, [x], { retainGraph: true })).toThrow(InPlaceModificationError);
    ag.assertNoLeaks(device(), before, 'failed backward');
    opt.dispose();
    raw.dispose([x, loss, step]);
  });
});
