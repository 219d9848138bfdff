/** @file Differentiable elementwise ops (unary, broadcasting binary, scalar fast paths, where, cast) and their VJPs. */
import * as raw from '@metagrad/tensor/raw';
import type { DType, Tensor } from '@metagrad/tensor';
import type { RuleTable } from '../prims';
import { record, shouldRecord } from '../record';
import { sumToShape } from './reduce';

// Compare ops, sign and floor have zero derivative almost everywhere: their results are constants.
export { eq, ne, lt, le, gt, ge, sign, floor } from '@metagrad/tensor/raw';

type UnaryPrim = 'neg' | 'exp' | 'log' | 'log1p' | 'expm1' | 'sin' | 'cos' | 'tanh' | 'sigmoid' | 'sqrt' | 'rsqrt' | 'recip' | 'abs' | 'relu' | 'square';
type BinaryPrim = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'maximum' | 'minimum';
type ScalarPrim = 'addScalar' | 'mulScalar' | 'powScalar' | 'axpby' | 'reluGrad';
export type ElementwisePrim = UnaryPrim | BinaryPrim | ScalarPrim | 'where' | 'cast';

/** Which tensor a unary VJP needs: the input, the output, or nothing. */
const UNARY_SAVES: Record<UnaryPrim, 'x' | 'y' | null> = {
  neg: null,
  exp: 'y',
  log: 'x',
  log1p: 'x',
  expm1: 'y',
  sin: 'x',
  cos: 'x',
  tanh: 'y',
  sigmoid: 'y',
  sqrt: 'y',
  rsqrt: 'y',
  recip: 'y',
  abs: 'x',
  relu: 'x',
  square: 'x',
};

function unaryOp(prim: UnaryPrim): (x: Tensor) => Tensor {
  const forward = raw[prim] as (x: Tensor) => Tensor;
  const saves = UNARY_SAVES[prim];
  return (x) => {
    const y = forward(x);
    return record(prim, [x], y, {}, () => (saves === 'x' ? [x] : saves === 'y' ? [y] : []));
  };
}

export const neg = unaryOp('neg');
export const exp = unaryOp('exp');
export const log = unaryOp('log');
export const log1p = unaryOp('log1p');
export const expm1 = unaryOp('expm1');
export const sin = unaryOp('sin');
export const cos = unaryOp('cos');
export const tanh = unaryOp('tanh');
export const sigmoid = unaryOp('sigmoid');
export const sqrt = unaryOp('sqrt');
export const rsqrt = unaryOp('rsqrt');
export const recip = unaryOp('recip');
export const abs = unaryOp('abs');
export const relu = unaryOp('relu');
export const square = unaryOp('square');

/** Which operands a binary VJP needs (pow also saves its output). */
const BINARY_SAVES: Record<BinaryPrim, 'none' | 'ab' | 'b' | 'aby'> = {
  add: 'none',
  sub: 'none',
  mul: 'ab',
  div: 'ab',
  pow: 'aby',
  maximum: 'ab',
  minimum: 'ab',
};

/** A binary op's operand: a tensor, or a number (a constant scalar, broadcast like a 0-d tensor). */
export type Operand = Tensor | number;

/**
 * How a binary op takes a number on either side: as a scalar fast path of the same derivative (addScalar,
 * mulScalar, powScalar …) or, where there is none, as a constant 0-d tensor of the other operand's dtype and device.
 */
type ScalarForms = { right: (x: Tensor, s: number) => Tensor; left: (s: number, x: Tensor) => Tensor };

function constantLike(x: Tensor, s: number): Tensor {
  return raw.full([], s, x.dtype, x.device);
}

function binaryOp(prim: BinaryPrim, scalar: () => ScalarForms): (a: Operand, b: Operand) => Tensor {
  const forward = raw[prim] as (a: Tensor, b: Tensor) => Tensor;
  const saves = BINARY_SAVES[prim];
  const tensors = (a: Tensor, b: Tensor): Tensor => {
    const y = forward(a, b);
    return record(prim, [a, b], y, {}, () => (saves === 'none' ? [] : saves === 'aby' ? [a, b, y] : saves === 'b' ? [b] : [a, b]));
  };
  return (a, b) => {
    const an = typeof a === 'number';
    const bn = typeof b === 'number';
    if (!an && !bn) return tensors(a, b);
    if (an && bn) {
      throw new raw.InvalidArgumentError(
        `${prim}(): both operands are numbers (${a}, ${b}); at least one must be a Tensor (compute it on the host, or wrap one with tensor())`,
      );
    }
    // A non-tensor, non-number operand (a string, an array) goes to the raw op, which names it.
    if (an && b instanceof raw.Tensor) return scalar().left(a, b);
    if (bn && a instanceof raw.Tensor) return scalar().right(a, b);
    return tensors(a as Tensor, b as Tensor);
  };
}

export const add = binaryOp('add', () => ({ right: addScalar, left: (s, x) => addScalar(x, s) }));
export const sub = binaryOp('sub', () => ({ right: subScalar, left: (s, x) => rsubScalar(x, s) }));
export const mul = binaryOp('mul', () => ({ right: mulScalar, left: (s, x) => mulScalar(x, s) }));
/** x / s multiplies by 1/s (one dispatch; may differ from true division by an ulp); s / x is s · recip(x). */
export const div = binaryOp('div', () => ({ right: divScalar, left: (s, x) => mulScalar(recip(x), s) }));
export const pow = binaryOp('pow', () => ({ right: powScalar, left: (s, x) => pow(constantLike(x, s), x) }));
export const maximum = binaryOp('maximum', () => ({
  right: (x, s) => maximum(x, constantLike(x, s)),
  left: (s, x) => maximum(constantLike(x, s), x),
}));
export const minimum = binaryOp('minimum', () => ({
  right: (x, s) => minimum(x, constantLike(x, s)),
  left: (s, x) => minimum(constantLike(x, s), x),
}));

/** x + s without allocating a scalar tensor. */
export function addScalar(x: Tensor, s: number): Tensor {
  return record('addScalar', [x], raw.addScalar(x, s), { scalar: s });
}

/** x · s without allocating a scalar tensor. */
export function mulScalar(x: Tensor, s: number): Tensor {
  return record('mulScalar', [x], raw.mulScalar(x, s), { scalar: s });
}

/** x ** s for a constant exponent. */
export function powScalar(x: Tensor, s: number): Tensor {
  return record('powScalar', [x], raw.powScalar(x, s), { scalar: s }, () => [x]);
}

/** a·x + b·y for same-shape f32 tensors, in one dispatch (the linear combination optimisers and trees use). */
export function axpby(a: number, x: Tensor, b: number, y: Tensor): Tensor {
  return record('axpby', [x, y], raw.axpby(a, x, b, y), { a, b });
}

/**
 * relu's VJP, gy where x > 0 else 0, as one differentiable op: linear in gy (its own VJP masks again) and with zero
 * derivative in x almost everywhere, so grad-of-grad through relu stays one dispatch per use.
 */
export function reluGrad(gy: Tensor, x: Tensor): Tensor {
  return record('reluGrad', [gy, null], raw.reluGrad(gy, x), {}, () => [x]);
}

// These two build the raw op's scalar themselves, so they check it: -'2' and 1 / '2' would silently be numbers.
export const subScalar = (x: Tensor, s: number): Tensor => addScalar(x, -raw.checkNumber('subScalar', 'scalar', s));
export const divScalar = (x: Tensor, s: number): Tensor => mulScalar(x, 1 / raw.checkNumber('divScalar', 'scalar', s));
/** s − x. */
export const rsubScalar = (x: Tensor, s: number): Tensor => addScalar(neg(x), s);

/** cond ? a : b with broadcasting; cond is a nonzero-true mask and gets no gradient. */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  return record('where', [null, a, b], raw.where(cond, a, b), {}, () => [cond]);
}

/** dtype conversion; only f32 → f32 passes gradients (integers are not differentiable). */
export function cast(x: Tensor, dtype: DType): Tensor {
  const y = raw.cast(x, dtype);
  if (x.dtype !== 'f32' || dtype !== 'f32' || !shouldRecord([x])) return y;
  return record('cast', [x], y, { dtype });
}

/** A constant scalar tensor on `like`'s device (no gradient). */
export function scalarLike(like: Tensor, value: number): Tensor {
  raw.checkTensors('scalarLike', { like }); // its device is read here, not by the raw op
  return raw.full([], value, 'f32', like.device);
}

export const elementwiseRules: RuleTable<ElementwisePrim> = {
  neg: ({ gy }) => [neg(gy)],
  exp: ({ gy, saved: [y] }) => [mul(gy, y)],
  log: ({ gy, saved: [x] }) => [div(gy, x)],
  log1p: ({ gy, saved: [x] }) => [div(gy, addScalar(x, 1))],
  expm1: ({ gy, saved: [y] }) => [mul(gy, addScalar(y, 1))],
  sin: ({ gy, saved: [x] }) => [mul(gy, cos(x))],
  cos: ({ gy, saved: [x] }) => [neg(mul(gy, sin(x)))],
  tanh: ({ gy, saved: [y] }) => [mul(gy, rsubScalar(square(y), 1))],
  sigmoid: ({ gy, saved: [y] }) => [mul(gy, mul(y, rsubScalar(y, 1)))],
  sqrt: ({ gy, saved: [y] }) => [div(mulScalar(gy, 0.5), y)],
  // d/dx x^(-1/2) = -1/2 · y³
  rsqrt: ({ gy, saved: [y] }) => [mul(mulScalar(gy, -0.5), mul(y, square(y)))],
  recip: ({ gy, saved: [y] }) => [neg(mul(gy, square(y)))],
  abs: ({ gy, saved: [x] }) => [mul(gy, raw.sign(x))],
  // One fused dispatch; the mask is a constant, so relu's second derivative is 0 and createGraph differentiates
  // only through gy.
  relu: ({ gy, saved: [x] }) => [reluGrad(gy, x)],
  square: ({ gy, saved: [x] }) => [mul(gy, mulScalar(x, 2))],

  add: ({ gy, inputShapes: [sa, sb], needs }) => [needs[0] ? sumToShape(gy, sa) : null, needs[1] ? sumToShape(gy, sb) : null],
  sub: ({ gy, inputShapes: [sa, sb], needs }) => [needs[0] ? sumToShape(gy, sa) : null, needs[1] ? sumToShape(neg(gy), sb) : null],
  mul: ({ gy, saved: [a, b], inputShapes: [sa, sb], needs }) => [needs[0] ? sumToShape(mul(gy, b), sa) : null, needs[1] ? sumToShape(mul(gy, a), sb) : null],
  div: ({ gy, saved: [a, b], inputShapes: [sa, sb], needs }) => {
    const ga = div(gy, b);
    return [needs[0] ? sumToShape(ga, sa) : null, needs[1] ? sumToShape(neg(mul(ga, div(a, b))), sb) : null];
  },
  pow: ({ gy, saved: [a, b, y], inputShapes: [sa, sb], needs }) => {
    // d/da = b·a^(b−1); d/db = y·log a, taken as 0 where a ≤ 0 (log undefined; torch masks a = 0 the same way).
    const ga = needs[0] ? sumToShape(mul(gy, mul(b, pow(a, addScalar(b, -1)))), sa) : null;
    let gb = null;
    if (needs[1]) {
      const positive = raw.gt(a, scalarLike(a, 0));
      const safeLog = log(where(positive, a, scalarLike(a, 1)));
      gb = sumToShape(mul(gy, mul(y, safeLog)), sb);
    }
    return [ga, gb];
  },
  // Ties split the gradient evenly, as torch.maximum/minimum: (gt + ge)/2 is 1 above, ½ at a tie, 0 below.
  maximum: ({ gy, saved: [a, b], inputShapes: [sa, sb], needs }) => [
    needs[0] ? sumToShape(mul(gy, raw.mulScalar(raw.add(raw.gt(a, b), raw.ge(a, b)), 0.5)), sa) : null,
    needs[1] ? sumToShape(mul(gy, raw.mulScalar(raw.add(raw.lt(a, b), raw.le(a, b)), 0.5)), sb) : null,
  ],
  minimum: ({ gy, saved: [a, b], inputShapes: [sa, sb], needs }) => [
    needs[0] ? sumToShape(mul(gy, raw.mulScalar(raw.add(raw.lt(a, b), raw.le(a, b)), 0.5)), sa) : null,
    needs[1] ? sumToShape(mul(gy, raw.mulScalar(raw.add(raw.gt(a, b), raw.ge(a, b)), 0.5)), sb) : null,
  ],
  addScalar: ({ gy }) => [gy],
  mulScalar: ({ gy, attrs }) => [mulScalar(gy, attrs.scalar)],
  reluGrad: ({ gy, saved: [x], inputShapes: [sg] }) => [sumToShape(reluGrad(gy, x), sg), null],
  axpby: ({ gy, attrs, needs }) => [needs[0] ? mulScalar(gy, attrs.a) : null, needs[1] ? mulScalar(gy, attrs.b) : null],
  powScalar: ({ gy, saved: [x], attrs }) => [mul(gy, mulScalar(powScalar(x, attrs.scalar - 1), attrs.scalar))],
  where: ({ gy, saved: [cond], inputShapes: [, sa, sb], needs }) => {
    const zero = scalarLike(gy, 0);
    return [null, needs[1] ? sumToShape(where(cond, gy, zero), sa) : null, needs[2] ? sumToShape(where(cond, zero, gy), sb) : null];
  },
  cast: ({ gy }) => [gy],
};
