/**
 * @file Numbers as operands of the differentiable binary ops (issue 17): `add(x, 1)`, `mul(2, x)`, `pow(2, x)` …
 * on either side, first and second derivatives against the float64 reference with the number as a 0-d constant.
 * Before, `add(x, 1)` failed with "tensors live on different devices".
 */
import { describe, it, expect } from 'vitest';
import { dispose, InvalidArgumentError, tensor, type Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import * as ref from '../../packages/tensor/src/reference/index';
import type { RefTensor } from '../../packages/tensor/src/reference/index';
import { useDevice } from '../helpers/device';
import { checkOp, rand } from './helpers';

const device = useDevice();
const scalar = (s: number): RefTensor => ({ shape: [], data: Float64Array.of(s) }) as RefTensor;
const positive = { lo: 0.3, hi: 2 };

type Op = (a: Tensor | number, b: Tensor | number) => Tensor;
type RefOp = (a: RefTensor, b: RefTensor) => RefTensor;
/** [name, op, reference, the number, input range] */
const cases: [string, Op, RefOp, number, Parameters<typeof rand>[2]?][] = [
  ['add', ag.add, ref.add, 1.5],
  ['sub', ag.sub, ref.sub, 0.75],
  ['mul', ag.mul, ref.mul, -2],
  ['div', ag.div, ref.div, 3, positive],
  ['pow', ag.pow, ref.pow, 2.5, positive],
  ['maximum', ag.maximum, ref.maximum, 0.1, { awayFromZero: 0.2 }],
  ['minimum', ag.minimum, ref.minimum, -0.1, { awayFromZero: 0.2 }],
];

describe('a number on either side of a differentiable binary op', () => {
  for (const [name, op, refOp, s, range] of cases) {
    it(`${name}(x, ${s}) and ${name}(${s}, x): values, first and second derivatives`, async () => {
      const x = rand([2, 3], 21, range);
      const xt = tensor(Float32Array.from(x.data), x.shape, 'f32', device());
      const right = op(xt, s);
      const left = op(s, xt);
      const want = (r: RefTensor) => Array.from(r.data);
      const close = (got: ArrayLike<number>, w: number[]) => w.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 4));
      close(await right.toArray(), want(refOp(x as RefTensor, scalar(s))));
      close(await left.toArray(), want(refOp(scalar(s), x as RefTensor)));
      dispose([xt, right, left]);
      await checkOp({
        name: `${name}(x, s)`,
        f: { gpu: (a) => op(a, s), ref: (a) => refOp(a as RefTensor, scalar(s)) },
        inputs: [x],
        opts: { device: device() },
      });
      await checkOp({
        name: `${name}(s, x)`,
        f: { gpu: (a) => op(s, a), ref: (a) => refOp(scalar(s), a as RefTensor) },
        inputs: [x],
        opts: { device: device() },
      });
    });
  }

  it('add(x, 1) and mul(2, x) on a tracked tensor give the gradients of x + 1 and 2x (the issue’s examples)', async () => {
    const x = ag.requiresGrad(tensor([1, 2, 3], [3], 'f32', device()));
    const y = ag.sum(ag.mul(2, ag.add(x, 1)));
    expect(Array.from(await y.toArray())).toEqual([18]);
    const [g] = ag.grad(y, [x]);
    expect(Array.from(await g.toArray())).toEqual([2, 2, 2]);
    dispose([x, y, g]);
  });

  it('two numbers, or a non-number, are InvalidArgumentErrors that say so', () => {
    expect(() => ag.add(1, 2)).toThrow(InvalidArgumentError);
    expect(() => ag.mul(1, 2)).toThrow(/both operands are numbers/);
    const x = tensor([1], [1], 'f32', device());
    expect(() => ag.add(x, '1' as never)).toThrow(InvalidArgumentError);
    x.dispose();
  });
});
