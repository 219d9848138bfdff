/**
 * @file jax-style function transforms grad(f) / valueAndGrad(f) beside the torch-style grad(outputs, inputs):
 * values against float64 central differences, first and second derivatives of the transformed function by
 * gradcheck/gradgradcheck, argnums and parameter trees, composition (grad of grad), memory, and the named errors for
 * each wrong form (issue 17).
 */
import { describe, it, expect } from 'vitest';
import { dispose, InvalidArgumentError, ShapeError, tensor, type Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { GradFormError, grad, valueAndGrad } from '@metagrad/autograd';
import { useDevice } from '../helpers/device';
import { checkOp, rand, type CheckInput } from './helpers';
import { expectNamedError } from '../helpers/expect-error';

const device = useDevice();

type Ref = { shape: readonly number[]; data: Float64Array };
const refMap = (a: Ref, f: (v: number, i: number) => number): Ref => ({ shape: a.shape, data: a.data.map(f) });

/** f(x, y) = Σ tanh(x)·y + mean(x²); its gradient in x is y·(1 − tanh²x) + 2x/n, in y tanh(x). */
const f = (x: Tensor, y: Tensor): Tensor => ag.add(ag.sum(ag.mul(ag.tanh(x), y)), ag.mean(ag.square(x)));
const fHost = (x: ArrayLike<number>, y: ArrayLike<number>): number => {
  let s = 0;
  let q = 0;
  for (let i = 0; i < x.length; i++) {
    s += Math.tanh(x[i]) * y[i];
    q += x[i] * x[i];
  }
  return s + q / x.length;
};
const dfdxRef = (x: Ref, y: Ref): Ref => refMap(x, (v, i) => y.data[i] * (1 - Math.tanh(v) ** 2) + (2 * v) / x.data.length);

const f32 = (r: CheckInput): Float32Array => Float32Array.from(r.data);
const up = (r: CheckInput): Tensor => tensor(f32(r), r.shape, 'f32', device());

async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.toArray());
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-4): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++)
    expect(Math.abs(got[i] - want[i]), `entry ${i}: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(tol * (1 + Math.abs(want[i])));
}

describe('grad(f) and valueAndGrad(f) (jax style)', () => {
  const X = rand([2, 3], 11);
  const Y = rand([2, 3], 12);

  it('grad(f)(x, y) equals float64 central differences of f in x (argnums 0 by default) and in y (argnums 1)', async () => {
    const x = up(X);
    const y = up(Y);
    const [xs, ys] = [f32(X), f32(Y)];
    const central = (which: 'x' | 'y') =>
      Array.from({ length: 6 }, (_, i) => {
        const h = 1e-6;
        const plus = Float64Array.from(which === 'x' ? xs : ys);
        const minus = Float64Array.from(plus);
        plus[i] += h;
        minus[i] -= h;
        return which === 'x' ? (fHost(plus, ys) - fHost(minus, ys)) / (2 * h) : (fHost(xs, plus) - fHost(xs, minus)) / (2 * h);
      });
    const gx = grad(f)(x, y);
    expect(gx.shape).toEqual([2, 3]);
    expect(gx.requiresGrad).toBe(false);
    expectClose(await values(gx), central('x'));
    const gy = grad(f, { argnums: 1 })(x, y);
    expectClose(await values(gy), central('y'));
    const [gx2, gy2] = grad(f, { argnums: [0, 1] })(x, y);
    expect(await values(gx2)).toEqual(await values(gx));
    expect(await values(gy2)).toEqual(await values(gy));
    // The arguments are untouched: still plain constants.
    expect(x.requiresGrad || y.requiresGrad).toBe(false);
    dispose([x, y, gx, gy, gx2, gy2]);
  });

  it('first and second derivatives of grad(f) (f’s second and third) pass gradcheck and gradgradcheck', async () => {
    await checkOp({
      name: 'grad(f) in x',
      f: { gpu: (x, y) => grad(f)(x, y), ref: (x, y) => dfdxRef(x, y) },
      inputs: [X, Y],
      opts: { device: device() },
    });
    // In y: ∂f/∂y = tanh(x), linear in nothing but x.
    await checkOp({
      name: 'grad(f, {argnums: 1})',
      f: { gpu: (x, y) => grad(f, { argnums: 1 })(x, y), ref: (x) => refMap(x, Math.tanh) },
      inputs: [X, Y],
      opts: { device: device(), wrt: [0] },
    });
  });

  it('valueAndGrad(f) gives f’s value (detached) and the same gradient from one forward pass; its value passes gradcheck', async () => {
    const x = up(X);
    const y = up(Y);
    const { value, grad: g } = valueAndGrad(f)(x, y);
    expect(value.requiresGrad).toBe(false);
    expectClose(await values(value), [fHost(f32(X), f32(Y))]);
    const g2 = grad(f)(x, y);
    expect(await values(g)).toEqual(await values(g2));
    dispose([x, y, value, g, g2]);
    await checkOp({
      name: 'valueAndGrad(f).grad',
      f: { gpu: (a, b) => valueAndGrad(f)(a, b).grad, ref: (a, b) => dfdxRef(a, b) },
      inputs: [X, Y],
      opts: { device: device() },
    });
  });

  it('a parameter tree gives a gradient tree of the same structure, equal to the torch-style grad of its leaves', async () => {
    const params = {
      layers: [
        { w: up(rand([3, 2], 1)), b: up(rand([2], 2)) },
        { w: up(rand([2, 1], 3)), b: up(rand([1], 4)) },
      ],
    };
    const x = up(rand([4, 3], 5));
    const loss = (p: typeof params, input: Tensor): Tensor => {
      let h = input;
      p.layers.forEach((l, i) => {
        h = ag.add(ag.matmul(h, l.w), l.b);
        if (i === 0) h = ag.tanh(h);
      });
      return ag.mean(ag.square(h));
    };
    const g = grad(loss)(params, x);
    expect(Object.keys(g)).toEqual(['layers']);
    expect(g.layers.map((l) => Object.keys(l))).toEqual([
      ['w', 'b'],
      ['w', 'b'],
    ]);
    expect(g.layers.map((l) => [l.w.shape, l.b.shape])).toEqual([
      [[3, 2], [2]],
      [[2, 1], [1]],
    ]);
    // The same through the tape API.
    const leaves = params.layers.flatMap((l) => [l.w, l.b]).map((t) => ag.requiresGrad(ag.detach(t)));
    const tracked = {
      layers: [
        { w: leaves[0], b: leaves[1] },
        { w: leaves[2], b: leaves[3] },
      ],
    };
    const torch = ag.grad(loss(tracked, x), leaves);
    const mine = g.layers.flatMap((l) => [l.w, l.b]);
    for (let i = 0; i < 4; i++) expect(await values(mine[i])).toEqual(await values(torch[i]));
    dispose([params, x, g, leaves, torch]);
  });

  it('composes: grad(grad(f)) and grad(grad(grad(f))) of x³ give 6x and 6; an unused argument gets zeros', async () => {
    const cube = (x: Tensor): Tensor => ag.sum(ag.mul(ag.square(x), x));
    const x = tensor([0.7], [1], 'f32', device());
    const d1 = grad(cube)(x);
    const d2 = grad(grad(cube))(x);
    const d3 = grad(grad(grad(cube)))(x);
    expectClose(await values(d1), [3 * 0.7 * 0.7]);
    expectClose(await values(d2), [6 * 0.7]);
    expectClose(await values(d3), [6]);
    // Only y is used: x's gradient is zeros of its shape, not an error.
    const onlyY = (_a: Tensor, b: Tensor): Tensor => ag.sum(ag.square(b));
    const [gx, gy] = grad(onlyY, { argnums: [0, 1] })(tensor([1, 2], [2], 'f32', device()), tensor([3], [1], 'f32', device()));
    expect(await values(gx)).toEqual([0, 0]);
    expect(await values(gy)).toEqual([6]);
    // f that depends on none of them: zeros too.
    const c = tensor([5], [1], 'f32', device());
    expect(await values(grad((_x: Tensor) => ag.sum(c))(x))).toEqual([0]);
    dispose([x, d1, d2, d3, gx, gy, c]);
  });

  it('createGraph: true keeps the gradient differentiable for the torch-style grad (Hessian-vector product of Σx⁴)', async () => {
    const x = ag.requiresGrad(tensor([1, -2, 0.5], [3], 'f32', device()));
    const g = grad((a: Tensor) => ag.sum(ag.square(ag.square(a))), { createGraph: true })(x);
    expect(g.requiresGrad).toBe(true);
    const v = tensor([1, 1, 2], [3], 'f32', device());
    const [hv] = ag.grad(ag.sum(ag.mul(g, v)), [x]);
    expectClose(await values(hv), [12, 48, 6]);
    dispose([x, g, v, hv]);
  });

  it('frees f’s intermediates and the graph: only the results stay alive', async () => {
    const x = up(X);
    const y = up(Y);
    const gf = grad(f);
    grad(f)(x, y).dispose(); // first call: kernels compiled, pools warm
    const before = device().memory().liveTensors;
    const g = gf(x, y);
    const { value, grad: g2 } = valueAndGrad(f)(x, y);
    expect(device().memory().liveTensors).toBe(before + 3);
    dispose([g, value, g2]);
    expect(device().memory().liveTensors).toBe(before);
    dispose([x, y]);
  });

  it('the torch form still works beside it: grad(outputs, inputs, options)', async () => {
    const x = ag.requiresGrad(tensor([1, 2, 3], [3], 'f32', device()));
    const [g] = ag.grad(ag.sum(ag.square(x)), [x]);
    expect(await values(g)).toEqual([2, 4, 6]);
    const [one] = ag.grad(ag.sum(ag.square(x)), x);
    expect(await values(one)).toEqual([2, 4, 6]);
    dispose([x, g, one]);
  });
});

describe('wrong forms are named errors that say which form to use', () => {
  const expectForm = expectNamedError;

  it('grad(f, x) (inputs passed to grad instead of to the function it returns)', () => {
    const x = tensor([1, 2], [2], 'f32', device());
    expectForm(() => grad(((a: Tensor) => ag.sum(a)) as never, x as never), GradFormError, /grad\(f\)\(x\).*jax style.*torch style/);
    expectForm(() => grad(((a: Tensor) => ag.sum(a)) as never, [x] as never), GradFormError, /call it with the inputs/);
    x.dispose();
  });

  it('grad(outputs) without inputs, grad(outputs, f), grad(number), valueAndGrad(tensor)', () => {
    const x = ag.requiresGrad(tensor([1, 2], [2], 'f32', device()));
    const y = ag.sum(ag.square(x));
    expectForm(() => (grad as (a: unknown) => unknown)(y), GradFormError, /inputs are missing.*grad\(outputs, inputs\).*grad\(f\)\(x\)/);
    expectForm(() => grad(y, ((a: Tensor) => a) as never), GradFormError, /function goes first/);
    expectForm(() => grad(3 as never, [x]), GradFormError, /neither a function nor output tensor/);
    expectForm(() => valueAndGrad(y as never), GradFormError, /grad\(outputs, inputs\)/);
    dispose([x, y]);
  });

  it('the returned function: non-scalar result, non-tensor result, async f, bad argnums, a number inside a tree', async () => {
    const x = tensor([1, 2], [2], 'f32', device());
    expectForm(() => grad((a: Tensor) => ag.square(a))(x), ShapeError, /single-element output.*vjp/);
    expectForm(() => grad((() => 3) as never)(x), GradFormError, /must return a single-element Tensor \(a loss\), got 3/);
    expectForm(() => grad((async (a: Tensor) => ag.sum(a)) as never), GradFormError, /async function.*synchronous/);
    expectForm(() => grad(((a: Tensor) => Promise.resolve(ag.sum(a))) as never)(x), InvalidArgumentError, /async|Promise/);
    expectForm(() => grad((a: Tensor, _b: Tensor) => ag.sum(a), { argnums: 1 })(x, undefined as never), InvalidArgumentError, /argument 1 is undefined/);
    expectForm(() => grad((a: Tensor) => ag.sum(a), { argnums: 2 })(x), GradFormError, /argument 2.*called with 1/);
    expectForm(() => grad((a: Tensor) => ag.sum(a), { argnums: -1 as never }), InvalidArgumentError, /argnums/);
    expectForm(() => grad((p: { w: Tensor; lr: number }) => ag.sum(p.w))({ w: x, lr: 0.1 }), InvalidArgumentError, /argument 0\.lr is 0\.1/);
    expectForm(() => grad((a: Tensor) => ag.sum(a), { createGraph: 'yes' as never }), InvalidArgumentError, /createGraph/);
    expect(device().memory().liveTensors).toBeGreaterThan(0);
    x.dispose();
  });
});
