/**
 * @file Autograd entry points and op wrappers given bad arguments (issue 14): options built by the wrapper (matmul's
 * flags, transpose's perm), non-tensors and functions passed to grad/backward/vjp/jvp/hvp/jacobian, typo'd option
 * keys and non-boolean flags. Each is a named InvalidArgumentError/ShapeError saying what was passed, never a raw
 * TypeError or a silently ignored option, and nothing leaks.
 */
import { describe, expect, it } from 'vitest';
import * as raw from '@metagrad/tensor/raw';
import { InvalidArgumentError, ShapeError, type Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { useDevice } from '../helpers/device';

const device = useDevice();
const t = (data: number[], shape = [data.length]) => raw.tensor(data, shape, 'f32', device());

/** `fn` throws `error` (class and, if given, message) and leaves the device's tensor count as it was. */
function expectRejected(fn: () => unknown, error: new (...args: never[]) => Error, message?: RegExp): void {
  const before = ag.memory(device());
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, 'expected a throw').toBeInstanceOf(error);
  if (message) expect((thrown as Error).message).toMatch(message);
  ag.assertNoLeaks(device(), before, 'rejected call');
}

describe('ag.matmul checks the options it rebuilds for the raw op', () => {
  it('a positional flag, a typo and a non-boolean flag are InvalidArgumentErrors (they were silently ignored)', async () => {
    const a = t([1, 2, 3, 4], [2, 2]);
    expectRejected(() => ag.matmul(a, a, true as never), InvalidArgumentError, /matmul: options must be an object/);
    expectRejected(() => ag.matmul(a, a, { transposeB: true } as never), InvalidArgumentError, /unknown option transposeB \(known: transA, transB\)/);
    expectRejected(() => ag.matmul(a, a, { transB: 'true' } as never), InvalidArgumentError, /transB must be true or false, got "true"/);
    expectRejected(() => ag.matmul(a, 2 as never), InvalidArgumentError, /matmul: b must be a Tensor, got 2/);
    // The good spelling still transposes: [[1,2],[3,4]]·[[1,2],[3,4]]ᵀ.
    const y = ag.matmul(a, a, { transB: true });
    expect(Array.from(await y.toArray())).toEqual([5, 11, 11, 25]);
    raw.dispose([a, y]);
  });
});

describe('ag.transpose checks the axes it builds its perm from', () => {
  it('fractional, out-of-range or missing axes are ShapeErrors', async () => {
    const x = t([1, 2, 3, 4, 5, 6], [2, 3]);
    expectRejected(() => ag.transpose(x, 0.5, 1), ShapeError, /transpose: axis 0.5/);
    expectRejected(() => ag.transpose(x, 5, 0), ShapeError, /transpose: axis 5 is out of range for rank 2/);
    expectRejected(() => ag.transpose(x, undefined as never, 1), ShapeError, /transpose/);
    expectRejected(() => ag.transpose(3 as never, 0, 1), InvalidArgumentError, /transpose: x must be a Tensor/);
    const y = ag.transpose(x, -1, 0);
    expect(y.shape).toEqual([3, 2]);
    expect(Array.from(await y.toArray())).toEqual([1, 4, 2, 5, 3, 6]);
    raw.dispose([x, y]);
  });
});

describe('grad and backward given non-tensors', () => {
  it('grad(y, 5), grad(f, x) and non-tensor gradOutputs say what was passed and what is expected', () => {
    const x = ag.requiresGrad(t([1, 2]));
    const y = ag.sum(ag.mul(x, x));
    expectRejected(() => ag.grad(y, 5 as never), InvalidArgumentError, /grad\(\): inputs must be a Tensor, got 5 \(number\)/);
    expectRejected(() => ag.grad(y, [x, 'x'] as never), InvalidArgumentError, /inputs\[1\] must be a Tensor, got "x"/);
    expectRejected(() => ag.grad(5 as never, x), ag.GradFormError, /grad\(\): the first argument is 5 \(number\), neither a function nor output tensor/);
    const f = (z: Tensor) => ag.sum(ag.mul(z, z));
    // grad(f) is the jax form now: passing the inputs to grad instead of to the function it returns says so.
    expectRejected(() => ag.grad(f as never, x), ag.GradFormError, /grad\(f\)\(x\) \(not grad\(f, x\)\)/);
    expectRejected(() => ag.grad(y, x, { gradOutputs: [5] } as never), InvalidArgumentError, /gradOutputs\[0\] must be a Tensor/);
    raw.dispose([x, y]);
  });

  it('grad() options: a typo or a non-boolean flag is an InvalidArgumentError (create_graph was ignored)', () => {
    const x = ag.requiresGrad(t([1, 2]));
    const y = ag.sum(ag.mul(x, x));
    expectRejected(() => ag.grad(y, x, { create_graph: true } as never), InvalidArgumentError, /unknown option create_graph/);
    expectRejected(() => ag.grad(y, x, { allowUnused: 'yes' } as never), InvalidArgumentError, /allowUnused must be true or false/);
    expectRejected(() => ag.grad(y, x, true as never), InvalidArgumentError, /grad\(\): options must be an object/);
    const [g] = ag.grad(y, x, { retainGraph: true });
    raw.dispose([x, y, g]);
  });

  it('backward(5), backward(y, { retainGraph }) and bad backward options', () => {
    const x = ag.requiresGrad(t([1, 2]));
    const y = ag.sum(ag.mul(x, x));
    expectRejected(() => ag.backward(5 as never), InvalidArgumentError, /backward\(\): output must be a Tensor, got 5/);
    expectRejected(() => ag.backward(y, { retainGraph: true } as never), InvalidArgumentError, /gradOutput \(options go third/);
    expectRejected(() => ag.backward(y, undefined, { retain_graph: true } as never), InvalidArgumentError, /unknown option retain_graph/);
    ag.backward(y);
    expect(x.grad).toBeTruthy();
    raw.dispose([x, y]);
  });

  it("requiresGrad and detach given a non-tensor or requiresGrad(x, 'false')", () => {
    const x = t([1, 2]);
    expectRejected(() => ag.requiresGrad(5 as never), InvalidArgumentError, /requiresGrad\(\): t must be a Tensor, got 5/);
    expectRejected(() => ag.requiresGrad(x, 'false' as never), InvalidArgumentError, /flag must be true or false, got "false"/);
    expect(x.requiresGrad).toBe(false);
    expectRejected(() => ag.detach([1, 2] as never), InvalidArgumentError, /detach\(\): t must be a Tensor, got \[1, 2\]/);
    raw.dispose([x]);
  });
});

describe('vjp / jvp / hvp / HvpOperator / jacobian given non-tensors, non-functions or bad options', () => {
  const square = (z: Tensor) => ag.mul(z, z);
  const sumSquares = (z: Tensor) => ag.sum(ag.mul(z, z));

  it('each names the argument and what it must be', () => {
    const x = t([1, 2]);
    expectRejected(() => ag.vjp(x as never, [x], x), InvalidArgumentError, /vjp: f must be a function of tensors, got a Tensor/);
    expectRejected(() => ag.vjp(square, x as never, x), InvalidArgumentError, /vjp: primals must be an array of Tensors, got a single Tensor/);
    expectRejected(() => ag.vjp(square, [x], 1 as never), InvalidArgumentError, /vjp: cotangent must be a Tensor, got 1/);
    expectRejected(() => ag.vjp(() => 3 as never, [x], x), InvalidArgumentError, /vjp: the result of f must be a Tensor, got 3/);
    expectRejected(() => ag.jvp(square, [x], [1] as never), InvalidArgumentError, /jvp: tangents\[0\] must be a Tensor, got 1/);
    expectRejected(() => ag.jvp(square, [x], [x], { createGraph: 1 } as never), InvalidArgumentError, /createGraph must be true or false/);
    expectRejected(() => ag.hvp(sumSquares, [x], [x], { create_graph: true } as never), InvalidArgumentError, /hvp: unknown option create_graph/);
    expectRejected(() => ag.hvp(sumSquares, [x], x as never), InvalidArgumentError, /hvp: v must be an array of Tensors/);
    expectRejected(() => new ag.HvpOperator(sumSquares, [5] as never), InvalidArgumentError, /HvpOperator: params\[0\] must be a Tensor/);
    expectRejected(() => ag.jacobian(5 as never, x), InvalidArgumentError, /jacobian: f must be a function/);
    expectRejected(() => ag.jacobian(square, null as never), InvalidArgumentError, /jacobian: x must be a Tensor, got null/);
    const op = new ag.HvpOperator(sumSquares, [x]);
    expectRejected(() => op.apply([x], { createGraph: 'no' } as never), InvalidArgumentError, /HvpOperator.apply: createGraph must be true or false/);
    op.dispose();
    raw.dispose([x]);
  });

  it('customVjp checks its functions and options', () => {
    const fwd = (z: Tensor) => ({ output: raw.mul(z, z) });
    const bwd = (gy: Tensor) => [gy];
    expect(() => ag.customVjp(fwd, bwd, { twiceDiff: true } as never)).toThrow(/customVjp: unknown option twiceDiff/);
    expect(() => ag.customVjp(fwd, bwd, { twiceDifferentiable: 'true' } as never)).toThrow(InvalidArgumentError);
    expect(() => ag.customVjp(fwd, bwd, { name: 3 } as never)).toThrow(/customVjp: name must be a string, got 3/);
    expect(() => ag.customVjp(fwd, 'bwd' as never)).toThrow(/customVjp: backward must be a function/);
  });
});

describe('autograd wrappers that pass options to the raw op keep the raw checks', () => {
  // conv2d, conv2dInputGrad/FilterGrad, the pools, gridSample and its gradients pass the caller's object through;
  // affineGrid's alignCorners, the reductions' keepDims and softmax's axis reach the raw op unchanged.
  it('typos and non-booleans are InvalidArgumentErrors', () => {
    const x = raw.ones([1, 1, 4, 4], 'f32', device());
    const w = raw.ones([1, 1, 3, 3], 'f32', device());
    const grid = raw.zeros([1, 2, 2, 2], 'f32', device());
    const theta = raw.zeros([1, 2, 3], 'f32', device());
    const v = t([1, 2, 3]);
    expectRejected(() => ag.conv2d(x, w, { strides: 2 } as never), InvalidArgumentError, /unknown option strides/);
    expectRejected(() => ag.conv2dInputGrad(x, w, [1, 1, 6, 6], { pad: 1 } as never), InvalidArgumentError, /unknown option pad/);
    expectRejected(() => ag.maxPool2d(x, { kernel: 2, strides: 2 } as never), InvalidArgumentError, /unknown option strides/);
    expectRejected(() => ag.avgPool2d(x, { kernal: 2 } as never), InvalidArgumentError, /unknown option kernal/);
    expectRejected(() => ag.gridSample(x, grid, { alignCorner: true } as never), InvalidArgumentError, /unknown option alignCorner/);
    expectRejected(() => ag.affineGrid(theta, [1, 1, 2, 2], 'false' as never), InvalidArgumentError, /alignCorners must be true or false/);
    expectRejected(() => ag.sum(v, 0, 'false' as never), InvalidArgumentError, /keepDims must be true or false/);
    expectRejected(() => ag.softmax(v, undefined as never), ShapeError);
    raw.dispose([x, w, grid, theta, v]);
  });
});

describe('wrappers that build the raw op’s scalar or windows themselves', () => {
  it("subScalar/divScalar given '2' and scalarLike given a non-tensor are InvalidArgumentErrors (-'2' and 1/'2' were numbers)", () => {
    const x = t([1, 2]);
    expectRejected(() => ag.subScalar(x, '2' as never), InvalidArgumentError, /subScalar: scalar must be a number, got "2"/);
    expectRejected(() => ag.divScalar(x, '2' as never), InvalidArgumentError, /divScalar: scalar must be a number, got "2"/);
    expectRejected(() => ag.scalarLike(5 as never, 1), InvalidArgumentError, /scalarLike: like must be a Tensor, got 5/);
    raw.dispose([x]);
  });

  it('maxPoolGather (public, builds its own windows) checks its options like the pools', async () => {
    const x = raw.tensor(
      Array.from({ length: 16 }, (_, i) => i),
      [1, 1, 4, 4],
      'f32',
      device(),
    );
    expectRejected(() => ag.maxPoolGather(x, x, { kernel: 2, strides: 1 } as never), InvalidArgumentError, /unknown option strides/);
    expectRejected(() => ag.maxPoolGather(x, x, { kernel: 2, stride: 1.5 }), InvalidArgumentError, /stride must be integers >= 1/);
    expectRejected(() => ag.maxPoolGather(x, x, { kernel: null } as never), InvalidArgumentError, /kernel/);
    expectRejected(() => ag.maxPoolGather(x, 3 as never, { kernel: 2 }), InvalidArgumentError, /maxPoolGather: x must be a Tensor/);
    // The good call picks each 2×2 window's maximum, as maxPool2d.
    const y = ag.maxPoolGather(x, x, { kernel: 2 });
    expect(Array.from(await y.toArray())).toEqual([5, 7, 13, 15]);
    raw.dispose([x, y]);
  });
});

describe('padOrCrop (public, derives slice bounds from its pads)', () => {
  it('malformed or fractional pads are named errors, not a raw TypeError or a fractional slice', async () => {
    const x = t([1, 2, 3, 4]);
    expectRejected(() => ag.padOrCrop(x, 1 as never), InvalidArgumentError, /padOrCrop: pads must be \[before, after\] integer pairs/);
    expectRejected(() => ag.padOrCrop(x, [[0.5, 0]] as never), InvalidArgumentError, /padOrCrop: pads/);
    expectRejected(
      () =>
        ag.padOrCrop(x, [
          [0, 0],
          [0, 0],
        ]),
      ShapeError,
      /2 pad pairs for shape \[4\]/,
    );
    const y = ag.padOrCrop(x, [[-1, 1]]);
    expect(Array.from(await y.toArray())).toEqual([2, 3, 4, 0]);
    raw.dispose([x, y]);
  });
});
