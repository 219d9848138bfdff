/** @file The tape: grad/backward semantics, grad modes, freed graphs, higher order, customVjp and functional helpers. */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createNodeDevice } from '@metagrad/tensor/node';
import * as raw from '@metagrad/tensor/raw';
import type { Device, Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';

let device: Device;
beforeAll(async () => {
  device = await createNodeDevice();
});
afterAll(() => device?.destroy());

const t = (data: number[], shape?: number[]) => raw.tensor(data, shape ?? [data.length]);
const values = async (x: Tensor | null): Promise<number[]> => Array.from(await x!.toArray());

describe('grad and backward', () => {
  it('computes first derivatives and accumulates into leaves', async () => {
    const x = ag.requiresGrad(t([1, 2, 3]));
    const y = ag.sum(ag.mul(x, x));
    const [gx] = ag.grad(y, [x], { retainGraph: true });
    expect(await values(gx)).toEqual([2, 4, 6]);
    ag.backward(y, undefined, { retainGraph: true });
    ag.backward(y);
    expect(await values(x.grad)).toEqual([4, 8, 12]);
    raw.dispose([x, y, gx]);
  });

  it('differentiates to third order with createGraph', async () => {
    const x = ag.requiresGrad(t([2]));
    const y = ag.mul(ag.mul(x, x), x); // x³
    const [g1] = ag.grad(y, [x], { createGraph: true });
    const [g2] = ag.grad(g1, [x], { createGraph: true });
    const [g3] = ag.grad(g2, [x]);
    expect(await values(g1)).toEqual([12]);
    expect(await values(g2)).toEqual([12]);
    expect(await values(g3)).toEqual([6]);
    raw.dispose([x, y, g1, g2, g3]);
  });

  it('throws GraphFreedError on a second backward through freed saved tensors', () => {
    const x = ag.requiresGrad(t([1, 2]));
    const y = ag.sum(ag.exp(x));
    ag.grad(y, [x])[0].dispose();
    expect(() => ag.grad(y, [x])).toThrow(ag.GraphFreedError);
    raw.dispose([x, y]);
  });

  it('records nothing under noGrad; detach stops gradients; allowUnused gives null', () => {
    const x = ag.requiresGrad(t([1, 2]));
    const z = ag.noGrad(() => ag.exp(x));
    expect(z.requiresGrad).toBe(false);
    expect(z.node).toBeNull();
    const d = ag.detach(x);
    expect(d.requiresGrad).toBe(false);
    const w = ag.requiresGrad(t([3, 4]));
    const y = ag.sum(x);
    expect(() => ag.grad(y, [w])).toThrow(/not used/);
    const y2 = ag.sum(x);
    const [gw] = ag.grad(y2, [w], { allowUnused: true });
    expect(gw).toBeNull();
    expect(() => ag.requiresGrad(y)).toThrow(/not a leaf/);
    raw.dispose([x, z, d, w, y, y2]);
  });

  it('formats the graph for debugging', () => {
    const x = ag.requiresGrad(t([1, 2]));
    const y = raw.tidy(() => ag.sum(ag.exp(x)));
    const text = ag.formatGraph(y);
    expect(text).toMatch(/sum \[\]/);
    expect(text).toMatch(/exp \[2\]/);
    expect(text).toMatch(/leaf/);
    raw.dispose([x, y]);
  });

  it('sums broadcast gradients back to the input shape', async () => {
    const a = ag.requiresGrad(t([1, 2, 3, 4, 5, 6], [2, 3]));
    const b = ag.requiresGrad(t([10, 20, 30], [3]));
    const y = ag.sum(ag.mul(a, b));
    const [ga, gb] = ag.grad(y, [a, b]);
    expect(await values(ga)).toEqual([10, 20, 30, 10, 20, 30]);
    expect(await values(gb)).toEqual([5, 7, 9]);
    raw.dispose([a, b, y, ga, gb]);
  });
});

describe('meta-gradients', () => {
  it('differentiates through an inner gradient step (MAML on a quadratic, closed form)', async () => {
    // inner loss ½a·w², w' = w − η·a·w; outer loss ½(w' − c)²; d/dw = (w' − c)(1 − η·a).
    const w = ag.requiresGrad(t([1.5]));
    const a = 2;
    const eta = 0.1;
    const c = 0.25;
    const inner = raw.tidy(() => ag.mulScalar(ag.square(w), a / 2));
    const [g] = ag.grad(inner, [w], { createGraph: true });
    const fast = raw.tidy(() => ag.sub(w, ag.mulScalar(g, eta)));
    const outer = raw.tidy(() => ag.mulScalar(ag.square(ag.addScalar(fast, -c)), 0.5));
    const [meta] = ag.grad(outer, [w]);
    const wFast = 1.5 - eta * a * 1.5;
    expect((await values(meta))[0]).toBeCloseTo((wFast - c) * (1 - eta * a), 5);
    raw.dispose([w, inner, g, fast, outer, meta]);
  });

  it('backward with createGraph leaves differentiable .grad', async () => {
    const x = ag.requiresGrad(t([3]));
    const y = raw.tidy(() => ag.mul(ag.square(x), x));
    ag.backward(y, undefined, { createGraph: true });
    const [g2] = ag.grad(x.grad!, [x]);
    expect(await values(g2)).toEqual([18]);
    raw.dispose([x, y, g2]);
  });
});

describe('customVjp', () => {
  const cube = ag.customVjp(
    (x: Tensor) => ({ output: ag.mul(ag.mul(x, x), x) }),
    (gy, { inputs: [x] }) => [ag.mul(gy, ag.mulScalar(ag.square(x), 3))],
    { name: 'cube', twiceDifferentiable: true },
  );
  const onceCube = ag.customVjp(
    (x: Tensor) => ({ output: raw.mul(raw.mul(x, x), x) }),
    (gy, { inputs: [x] }) => [raw.mul(gy, raw.mulScalar(raw.square(x), 3))],
    { name: 'onceCube' },
  );

  it('uses the custom backward, twice when flagged', async () => {
    const x = ag.requiresGrad(t([2]));
    const y = cube(x);
    const [g1] = ag.grad(y, [x], { createGraph: true });
    const [g2] = ag.grad(g1, [x]);
    expect(await values(g1)).toEqual([12]);
    expect(await values(g2)).toEqual([12]);
    raw.dispose([x, y, g1, g2]);
  });

  it('says clearly when a once-differentiable backward is differentiated again', async () => {
    const x = ag.requiresGrad(t([2]));
    const y = onceCube(x);
    const [g1] = ag.grad(y, [x], { createGraph: true });
    expect(await values(g1)).toEqual([12]);
    expect(() => ag.grad(g1, [x])).toThrow(ag.NotTwiceDifferentiableError);
    raw.dispose([x, y, g1]);
  });
});

describe('functional helpers', () => {
  const f = (x: Tensor) => ag.sum(ag.mul(ag.mul(x, x), x)); // Σ x³: grad 3x², Hessian diag(6x)

  it('vjp, jvp, hvp, HvpOperator and jacobian agree with closed forms', async () => {
    const x = t([1, 2, 3]);
    const v = t([1, 0.5, -1]);
    const { output, grads } = ag.vjp(f, [x], t([2], []));
    expect(await values(output)).toEqual([36]);
    expect(await values(grads[0])).toEqual([6, 24, 54]);
    const square = (z: Tensor) => ag.mul(z, z);
    const j = ag.jvp(square, [x], [v]);
    expect(await values(j.jvp)).toEqual([2, 2, -6]);
    const [hv] = ag.hvp(f, [x], [v]);
    expect(await values(hv)).toEqual([6, 6, -18]);
    const op = new ag.HvpOperator(f, [x]);
    for (let i = 0; i < 3; i++) {
      const [h] = op.apply([v]);
      expect(await values(h)).toEqual([6, 6, -18]);
      h.dispose();
    }
    op.dispose();
    const jac = ag.jacobian(square, x);
    expect(jac.shape).toEqual([3, 3]);
    expect(await values(jac)).toEqual([2, 0, 0, 0, 4, 0, 0, 0, 6]);
    raw.dispose([x, v, output, grads, j, hv, jac]);
  });
});

describe('gradcheck catches wrong derivatives', () => {
  const refCube = (x: { shape: readonly number[]; data: Float64Array }) => ({
    shape: x.shape,
    data: x.data.map((v) => v * v * v),
  });
  const input = { shape: [3], data: Float64Array.from([0.5, -0.7, 1.2]) };

  it('flags a wrong first derivative', async () => {
    const wrong = ag.customVjp(
      (x: Tensor) => ({ output: raw.mul(raw.mul(x, x), x) }),
      (gy, { inputs: [x] }) => [ag.mul(gy, ag.mulScalar(x, 2))],
      { twiceDifferentiable: true },
    );
    const report = await ag.gradcheck({ gpu: wrong, ref: refCube }, [input], { raise: false });
    expect(report.ok).toBe(false);
  });

  it('flags a backward that is right once but detaches its input (wrong second order)', async () => {
    const detached = ag.customVjp(
      (x: Tensor) => ({ output: raw.mul(raw.mul(x, x), x) }),
      (gy, { inputs: [x] }) => [ag.mul(gy, raw.mulScalar(raw.square(x), 3))],
      { twiceDifferentiable: true },
    );
    expect((await ag.gradcheck({ gpu: detached, ref: refCube }, [input], { raise: false })).ok).toBe(true);
    const second = await ag.gradgradcheck({ gpu: detached, ref: refCube }, [input], { raise: false });
    expect(second.ok).toBe(false);
  });
});
