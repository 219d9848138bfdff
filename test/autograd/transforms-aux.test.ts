/**
 * @file `hasAux` for the jax-style transforms: with `{ hasAux: true }` f returns `[value, aux]`, `grad(f, …)(...)`
 * gives `[gradient, aux]` and `valueAndGrad(f, …)(...)` gives `{ value, grad, aux }`. The gradient equals the one
 * without aux, aux holds f's values (tensors as fresh handles the caller owns, detached unless createGraph, other
 * values as they are), nesting in either direction, createGraph, the named errors for each wrong form, no leaks,
 * and the overloads' result types (checked by `pnpm typecheck`).
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { dispose, InvalidArgumentError, ShapeError, tensor, type Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { type AuxTransformOptions, GradFormError, grad, type TransformOptions, valueAndGrad, type ValueAndGradAux } from '@metagrad/autograd';
import { useDevice } from '../helpers/device';
import { rand } from './helpers';
import { expectNamedError } from '../helpers/expect-error';

const device = useDevice();

const X = rand([2, 3], 21);
const Y = rand([2, 3], 22);
const up = (r: { shape: readonly number[]; data: ArrayLike<number> }): Tensor => tensor(Float32Array.from(r.data), r.shape, 'f32', device());

async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.toArray());
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-4): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++)
    expect(Math.abs(got[i] - want[i]), `entry ${i}: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(tol * (1 + Math.abs(want[i])));
}

/** The loss of transforms.test.ts: Σ tanh(x)·y + mean(x²). */
const loss = (x: Tensor, y: Tensor): Tensor => ag.add(ag.sum(ag.mul(ag.tanh(x), y)), ag.mean(ag.square(x)));

interface Aux {
  pred: Tensor;
  parts: [Tensor, number, null];
  byName: Map<string, Tensor>;
  label: string;
}

/** The same loss with aux: the prediction tanh(x)·y, a nested array, a Map and plain values. */
const lossAux = (x: Tensor, y: Tensor): [Tensor, Aux] => {
  const pred = ag.mul(ag.tanh(x), y);
  const sq = ag.mean(ag.square(x));
  return [ag.add(ag.sum(pred), sq), { pred, parts: [sq, 6, null], byName: new Map([['x', x]]), label: 'aux' }];
};

describe('hasAux: f returns [value, aux]', () => {
  it('grad(f, { hasAux: true }) gives [gradient, aux]: the gradient equals grad(f) without aux, aux holds f’s values', async () => {
    const x = up(X);
    const y = up(Y);
    const [g, aux] = grad(lossAux, { hasAux: true })(x, y);
    const plain = grad(loss)(x, y);
    expect(await values(g)).toEqual(await values(plain));
    // aux: tensors detached, equal to f's values; other values as they are; the structure kept (a new Map).
    expect(Object.keys(aux)).toEqual(['pred', 'parts', 'byName', 'label']);
    expect(aux.pred.requiresGrad).toBe(false);
    const [xs, ys] = [await values(x), await values(y)];
    expectClose(
      await values(aux.pred),
      xs.map((v, i) => Math.tanh(v) * ys[i]),
    );
    expectClose(await values(aux.parts[0]), [xs.reduce((s, v) => s + v * v, 0) / xs.length]);
    expect(aux.parts.slice(1)).toEqual([6, null]);
    expect(aux.label).toBe('aux');
    expect(aux.byName).toBeInstanceOf(Map);
    // The argument comes back as a fresh handle the caller owns: disposing it leaves x alive.
    const ax = aux.byName.get('x') as Tensor;
    expect(ax).not.toBe(x);
    expect(await values(ax)).toEqual(xs);
    ax.dispose();
    expect(x.isDisposed).toBe(false);
    // argnums: an array of gradients beside aux.
    const [[gx, gy], aux2] = grad(lossAux, { argnums: [0, 1], hasAux: true })(x, y);
    const [px, py] = grad(loss, { argnums: [0, 1] })(x, y);
    expect(await values(gx)).toEqual(await values(px));
    expect(await values(gy)).toEqual(await values(py));
    // hasAux: false is the plain form.
    const g3 = grad(loss, { hasAux: false })(x, y);
    expect(await values(g3)).toEqual(await values(plain));
    dispose([x, y, g, plain, aux, gx, gy, aux2, px, py, g3]);
  });

  it('valueAndGrad(f, { hasAux: true }) gives { value, grad, aux } from one call of f', async () => {
    const x = up(X);
    const y = up(Y);
    let calls = 0;
    const counted = (a: Tensor, b: Tensor): [Tensor, Aux] => {
      calls++;
      return lossAux(a, b);
    };
    const out = valueAndGrad(counted, { hasAux: true })(x, y);
    expect(calls).toBe(1);
    expect(Object.keys(out)).toEqual(['value', 'grad', 'aux']);
    const plain = valueAndGrad(loss)(x, y);
    expect(await values(out.value)).toEqual(await values(plain.value));
    expect(await values(out.grad)).toEqual(await values(plain.grad));
    expect(out.value.requiresGrad || out.aux.pred.requiresGrad).toBe(false);
    const [xs, ys] = [await values(x), await values(y)];
    expectClose(
      await values(out.aux.pred),
      xs.map((v, i) => Math.tanh(v) * ys[i]),
    );
    dispose([x, y, out, plain]);
  });

  it('grad of grad, hasAux on the outer transform: the inner gradient as aux (detached), the second derivative as gradient', async () => {
    const cube = (x: Tensor): Tensor => ag.sum(ag.mul(ag.square(x), x));
    const x = tensor([0.7, -1.5], [2], 'f32', device());
    const outer = (a: Tensor): [Tensor, { first: Tensor }] => {
      const first = grad(cube)(a); // 3a², differentiable here (inside the outer transform)
      return [ag.sum(first), { first }];
    };
    const [second, { first }] = grad(outer, { hasAux: true })(x);
    expectClose(await values(second), [6 * 0.7, 6 * -1.5]);
    expectClose(await values(first), [3 * 0.49, 3 * 2.25]);
    expect(first.requiresGrad).toBe(false);
    dispose([x, second, first]);
  });

  it('grad of grad, hasAux on the inner transform: inside an outer transform aux keeps its graph and is differentiated through', async () => {
    // inner f(x) = [Σx³, x²]: gradient 3x², aux x². The outer loss Σ 3x²·x² = Σ 3x⁴ has gradient 12x³; with aux
    // detached it would be 6x³.
    const inner = (a: Tensor): [Tensor, Tensor] => [ag.sum(ag.mul(ag.square(a), a)), ag.square(a)];
    const x = tensor([0.5, -2], [2], 'f32', device());
    const outerLoss = (a: Tensor): Tensor => {
      const [g, sq] = grad(inner, { hasAux: true })(a);
      expect(sq.requiresGrad).toBe(true);
      return ag.sum(ag.mul(g, sq));
    };
    const d = grad(outerLoss)(x);
    expectClose(await values(d), [12 * 0.125, 12 * -8]);
    // valueAndGrad inside: its value and aux both carry the graph (Σx³ + Σx² → 3x² + 2x).
    const viaValue = grad((a: Tensor) => {
      const { value, aux } = valueAndGrad(inner, { hasAux: true })(a);
      return ag.add(value, ag.sum(aux));
    })(x);
    expectClose(await values(viaValue), [3 * 0.25 + 1, 3 * 4 - 4]);
    // Both at once: the outer transform has aux too, the inner aux returned through it comes out detached.
    const [d2, auxOut] = grad(
      (a: Tensor): [Tensor, Tensor] => {
        const [g, sq] = grad(inner, { hasAux: true })(a);
        return [ag.sum(ag.mul(g, sq)), sq];
      },
      { hasAux: true },
    )(x);
    expect(await values(d2)).toEqual(await values(d));
    expect(auxOut.requiresGrad).toBe(false);
    expectClose(await values(auxOut), [0.25, 4]);
    dispose([x, d, viaValue, d2, auxOut]);
  });

  it('createGraph: true keeps aux differentiable (torch-style grad through it); false detaches it even for tracked arguments', async () => {
    const x = ag.requiresGrad(tensor([1, -2, 0.5], [3], 'f32', device()));
    const host = new Float32Array(1 << 16); // a typed array is a value, returned as it is (not walked)
    const f4 = (a: Tensor): [Tensor, { sq: Tensor; k: number; host: Float32Array }] => [ag.sum(ag.square(ag.square(a))), { sq: ag.square(a), k: 2, host }];
    const [g, aux] = grad(f4, { hasAux: true, createGraph: true })(x);
    expect(g.requiresGrad && aux.sq.requiresGrad).toBe(true);
    expect(aux.k).toBe(2);
    expect(aux.host).toBe(host);
    const [dAux] = ag.grad(ag.sum(aux.sq), [x]); // 2x
    expectClose(await values(dAux), [2, -4, 1]);
    const v = tensor([1, 1, 2], [3], 'f32', device());
    const [hv] = ag.grad(ag.sum(ag.mul(g, v)), [x]); // 12x²·v
    expectClose(await values(hv), [12, 48, 6]);
    // The default for a tracked argument is createGraph (as for value); explicit false detaches value and aux.
    const byDefault = valueAndGrad(f4, { hasAux: true })(x);
    expect(byDefault.value.requiresGrad && byDefault.aux.sq.requiresGrad).toBe(true);
    const off = valueAndGrad(f4, { hasAux: true, createGraph: false })(x);
    expect(off.value.requiresGrad || off.grad.requiresGrad || off.aux.sq.requiresGrad).toBe(false);
    expectClose(await values(off.aux.sq), [1, 4, 0.25]);
    dispose([x, g, aux, dAux, v, hv, byDefault, off]);
  });

  it('frees f’s intermediates and the graph: only the gradient, value and aux tensors stay alive, nothing leaks', async () => {
    const x = up(X);
    const y = up(Y);
    dispose(grad(lossAux, { hasAux: true })(x, y)); // first call: kernels compiled, pools warm
    const before = device().memory().liveTensors;
    const [g, aux] = grad(lossAux, { hasAux: true })(x, y);
    const out = valueAndGrad(lossAux, { hasAux: true })(x, y);
    // grad: gradient + 3 aux tensors (pred, parts[0], byName x); valueAndGrad: value + gradient + 3.
    expect(device().memory().liveTensors).toBe(before + 4 + 5);
    dispose([g, aux, out]);
    expect(device().memory().liveTensors).toBe(before);
    // The same with the graph kept (createGraph, tracked arguments) and nested: tape nodes freed with the results.
    const xt = ag.requiresGrad(up(X));
    await ag.expectNoLeaks(
      () => {
        dispose(grad(lossAux, { hasAux: true, createGraph: true })(xt, y));
        dispose(valueAndGrad(lossAux, { hasAux: true })(xt, y));
        const nested = grad((a: Tensor) => {
          const [ga, auxA] = grad(lossAux, { hasAux: true })(a, y);
          return ag.add(ag.sum(ga), ag.sum(auxA.pred));
        })(x);
        nested.dispose();
      },
      device(),
      'hasAux transforms',
    );
    dispose([x, y, xt]);
  });
});

describe('wrong forms with hasAux are named errors that show what f returned', () => {
  const expectForm = expectNamedError;

  it('hasAux: true with a bare tensor, a pair whose first element is not a single-element tensor, a triple; no leaks', () => {
    const x = tensor([1, 2], [2], 'f32', device());
    const before = ag.memory(device());
    expectForm(() => grad(((a: Tensor) => ag.sum(a)) as never, { hasAux: true })(x), GradFormError, /hasAux.*\[value, aux\].*got a Tensor of shape \[\]/);
    expectForm(
      () => valueAndGrad(((a: Tensor) => [3, ag.sum(a)]) as never, { hasAux: true })(x),
      GradFormError,
      /\[value, aux\].*first element is 3 \(number\)/,
    );
    expectForm(
      () => grad((a: Tensor): [Tensor, number] => [ag.square(a), 1], { hasAux: true })(x),
      ShapeError,
      /value \(f’s first element\) has shape \[2\].*single-element/,
    );
    expectForm(() => grad(((a: Tensor) => [ag.sum(a), 1, 2]) as never, { hasAux: true })(x), GradFormError, /got an array of 3/);
    expectForm(() => grad(((a: Tensor) => ({ value: ag.sum(a) })) as never, { hasAux: true })(x), GradFormError, /got \[object Object\]|got .*object/);
    ag.assertNoLeaks(device(), before, 'rejected hasAux calls');
    x.dispose();
  });

  it('a pair without hasAux says to pass it; hasAux must be a boolean; a tensor inside a class instance in aux is refused', () => {
    const x = tensor([1, 2], [2], 'f32', device());
    const before = ag.memory(device());
    expectForm(() => grad(((a: Tensor) => [ag.sum(a), a]) as never)(x), GradFormError, /got an array of 2.*\{ hasAux: true \}/);
    expectForm(() => grad((a: Tensor) => ag.sum(a), { hasAux: 'yes' as never }), InvalidArgumentError, /hasAux/);
    class Holder {
      constructor(readonly t: Tensor) {}
    }
    expectForm(
      () => grad((a: Tensor): [Tensor, Holder] => [ag.sum(a), new Holder(ag.square(a))], { hasAux: true })(x),
      GradFormError,
      /aux\.t .*Holder|aux is a Holder/,
    );
    ag.assertNoLeaks(device(), before, 'rejected hasAux calls');
    x.dispose();
  });
});

/** Never called: `pnpm typecheck` checks these types (vitest's expectTypeOf is a no-op at run time). */
function typesOnly(x: Tensor, params: { w: Tensor; b: Tensor }) {
  const [g, aux] = grad(lossAux, { hasAux: true })(x, x);
  expectTypeOf(g).toEqualTypeOf<Tensor>();
  expectTypeOf(aux).toEqualTypeOf<Aux>();
  const [gs, aux2] = grad(lossAux, { argnums: [0, 1], hasAux: true })(x, x);
  expectTypeOf(gs).toEqualTypeOf<[Tensor, Tensor]>();
  expectTypeOf(aux2).toEqualTypeOf<Aux>();
  expectTypeOf(grad(lossAux, { argnums: 1, hasAux: true, createGraph: true })(x, x)).toEqualTypeOf<[Tensor, Aux]>();
  const vg = valueAndGrad(lossAux, { hasAux: true })(x, x);
  expectTypeOf(vg).toEqualTypeOf<ValueAndGradAux<Tensor, Aux>>();
  expectTypeOf(vg.aux.pred).toEqualTypeOf<Tensor>();
  // An inline f: its array literal is read as the pair, aux's type inferred; a parameter tree gives a tree.
  const [gp, pred] = grad((p: { w: Tensor; b: Tensor }) => [ag.sum(ag.mul(p.w, p.b)), ag.mul(p.w, p.b)], { hasAux: true })(params);
  expectTypeOf(gp).toEqualTypeOf<{ w: Tensor; b: Tensor }>();
  expectTypeOf(pred).toEqualTypeOf<Tensor>();
  // hasAux: false (or left out) is the plain form: f must return a tensor and the result is the gradient alone.
  expectTypeOf(grad(loss, { hasAux: false })(x, x)).toEqualTypeOf<Tensor>();
  // Options kept in typed variables: TransformOptions (as before hasAux) and AuxTransformOptions.
  const plainOpts: TransformOptions = { createGraph: true };
  expectTypeOf(grad(loss, plainOpts)(x, x)).toEqualTypeOf<Tensor>();
  const auxOpts: AuxTransformOptions<1> = { argnums: 1, hasAux: true };
  expectTypeOf(valueAndGrad(lossAux, auxOpts)(x, x)).toEqualTypeOf<ValueAndGradAux<Tensor, Aux>>();
  // @ts-expect-error f returns a pair but hasAux is not set
  grad(lossAux)(x, x);
  // @ts-expect-error hasAux: true needs f to return [value, aux]
  grad(loss, { hasAux: true });
  // @ts-expect-error valueAndGrad likewise
  valueAndGrad(loss, { hasAux: true });
}
void typesOnly;
