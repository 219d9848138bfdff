/** @file Raw elementwise ops: unary math, broadcasting binary/compare ops, scalar fast paths, where, cast. */
import {
  axpbyKernel,
  binaryKernel,
  castKernel,
  reluGradKernel,
  COMPARE_OP_NAMES,
  INT_BINARY_OPS,
  INT_UNARY_OPS,
  ARITH_OP_NAMES,
  UNARY_OP_NAMES,
  linearDispatch,
  MAX_ELEMENTWISE_RANK,
  STRIDED_CHUNK,
  unaryKernel,
  VEC4_CHUNK,
  whereKernel,
  type ArithOpName,
  type BinaryOpName,
  type CompareOpName,
  type DType,
  type ElementwiseLayout,
  type KernelSpec,
  type OperandMode,
  type UnaryOpName,
} from '@metagrad/kernels-wgsl';
import { DTypeError, InvalidArgumentError, ShapeError } from '../errors';
import { assertSameDevice, type Shape, type Tensor } from '../tensor';
import { empty } from './creation';
import { fits, opNode, pendingTensor, type Operand } from '../lazy/expr';
import { fusionEnabled } from '../lazy/flag';
import type { FusedOp } from '@metagrad/kernels-wgsl';
import { broadcastShapes, broadcastStrides, recordInto, checkDType, checkNumber, checkTensors, describeValue, fmt, stridesOf, UniformWriter } from './util';

export type { UnaryOpName, BinaryOpName, ArithOpName, CompareOpName };
export { setFusion, fusionEnabled, fusionOverride } from '../lazy/flag';

// ---------------------------------------------------------------- lazy fusion (on unless METAGRAD_FUSION=0)

/** Whether this call builds a pending expression: fusion on for the device, f32 in and out, a non-empty output. */
function goesLazy(device: Tensor['device'], dtypes: readonly DType[], shape: Shape): boolean {
  return dtypes.every((d) => d === 'f32') && shape.every((d) => d > 0) && fusionEnabled(device);
}

function lazyOp(op: FusedOp, operands: readonly Operand[], shape: Shape, device: Tensor['device']): Tensor {
  return pendingTensor(opNode(op, operands, shape, maxBuffers(device)), device);
}

const maxBuffers = (device: Tensor['device']) => device.limits.maxStorageBuffersPerShaderStage || 8;

// ---------------------------------------------------------------- broadcasting plan

interface ElementwisePlan {
  layout: ElementwiseLayout;
  /** Folded output shape and per-input strides (used by the strided layout). */
  shape: number[];
  strides: number[][];
}

/**
 * Folds the broadcast into the fewest dims: drops size-1 output dims and merges neighbours that every operand
 * walks contiguously (or not at all). Operands that end up contiguous or constant need no strides, and when
 * none needs them the vec4 kernel runs.
 */
export function planElementwise(outShape: Shape, inputShapes: readonly Shape[]): ElementwisePlan {
  const all = inputShapes.map((s) => broadcastStrides(s, outShape));
  const shape: number[] = [];
  const strides: number[][] = inputShapes.map(() => []);
  for (let d = 0; d < outShape.length; d++) {
    if (outShape[d] === 1) continue;
    const last = shape.length - 1;
    const mergeable = last >= 0 && all.every((st, i) => strides[i][last] === st[d] * outShape[d]);
    if (mergeable) {
      shape[last] *= outShape[d];
      all.forEach((st, i) => (strides[i][last] = st[d]));
    } else {
      shape.push(outShape[d]);
      all.forEach((st, i) => strides[i].push(st[d]));
    }
  }
  const contiguous = stridesOf(shape);
  const modes: (OperandMode | 'strided')[] = strides.map((st) =>
    st.every((s) => s === 0) ? 'scalar' : st.every((s, d) => s === contiguous[d] || shape[d] === 1) ? 'full' : 'strided',
  );
  if (modes.every((m) => m !== 'strided')) {
    return { layout: { kind: 'vec4', operands: modes as OperandMode[] }, shape, strides };
  }
  if (shape.length > MAX_ELEMENTWISE_RANK) {
    throw new ShapeError(`broadcast of ${inputShapes.map(fmt).join(', ')} folds to rank ${shape.length} > ${MAX_ELEMENTWISE_RANK}`);
  }
  return { layout: { kind: 'strided', rank: shape.length }, shape, strides };
}

/** Records one elementwise kernel over `inputs` (broadcast to `outShape`) into a fresh output. */
function runElementwise(makeSpec: (layout: ElementwiseLayout) => KernelSpec, inputs: readonly Tensor[], outShape: Shape, outDtype: DType): Tensor {
  const device = inputs[0].device;
  const buffers = inputs.map((t) => t.buffer); // asserts every input is alive
  // Plan (which can throw on a too-deep broadcast) and build the kernel before allocating, so nothing leaks.
  const plan = planElementwise(
    outShape,
    inputs.map((t) => t.shape),
  );
  const spec = makeSpec(plan.layout);
  const out = empty(outShape, outDtype, device);
  const n = out.size;
  if (n === 0) return out;
  return recordInto(out, () => {
    if (plan.layout.kind === 'vec4') {
      const operands = plan.layout.operands;
      const nvec = Math.ceil(n / 4);
      const used = buffers.filter((_, i) => operands[i] !== 'uniform');
      device.dispatch(spec, [...used, out.storage.buffer], new Uint32Array([n, nvec, 0, 0, 0, 0, 0, 0]), linearDispatch(nvec, VEC4_CHUNK));
    } else {
      const w = new UniformWriter().u32(n).u32(0).u32(0).u32(0).u32s(plan.shape, MAX_ELEMENTWISE_RANK, 1);
      for (const st of plan.strides) w.u32s(st, MAX_ELEMENTWISE_RANK);
      device.dispatch(spec, [...buffers, out.storage.buffer], w.finish(), linearDispatch(n, STRIDED_CHUNK));
    }
  });
}

// ---------------------------------------------------------------- unary

/** Applies a unary op. Math ops are f32-only; neg/abs/sign/relu/square also take i32. */
export function unary(op: UnaryOpName, x: Tensor): Tensor {
  if (!(UNARY_OP_NAMES as readonly unknown[]).includes(op))
    throw new InvalidArgumentError(`unary: unknown op ${describeValue(op)}; valid ops are ${UNARY_OP_NAMES.join(', ')}`);
  checkTensors(op, { x });
  if (x.dtype !== 'f32' && !(INT_UNARY_OPS.includes(op) && x.dtype === 'i32')) {
    throw new DTypeError(`${op}: expects f32${INT_UNARY_OPS.includes(op) ? ' or i32' : ''}, got ${x.dtype} ${fmt(x.shape)}`);
  }
  if (goesLazy(x.device, [x.dtype], x.shape)) return lazyOp(op, [x], x.shape, x.device);
  return runElementwise(() => unaryKernel({ op, dtype: x.dtype }), [x], x.shape, x.dtype);
}

export const neg = (x: Tensor): Tensor => unary('neg', x);
export const exp = (x: Tensor): Tensor => unary('exp', x);
export const log = (x: Tensor): Tensor => unary('log', x);
export const log1p = (x: Tensor): Tensor => unary('log1p', x);
export const expm1 = (x: Tensor): Tensor => unary('expm1', x);
export const sin = (x: Tensor): Tensor => unary('sin', x);
export const cos = (x: Tensor): Tensor => unary('cos', x);
export const tanh = (x: Tensor): Tensor => unary('tanh', x);
export const sigmoid = (x: Tensor): Tensor => unary('sigmoid', x);
export const sqrt = (x: Tensor): Tensor => unary('sqrt', x);
export const rsqrt = (x: Tensor): Tensor => unary('rsqrt', x);
export const recip = (x: Tensor): Tensor => unary('recip', x);
export const abs = (x: Tensor): Tensor => unary('abs', x);
export const sign = (x: Tensor): Tensor => unary('sign', x);
export const relu = (x: Tensor): Tensor => unary('relu', x);
export const square = (x: Tensor): Tensor => unary('square', x);
export const floor = (x: Tensor): Tensor => unary('floor', x);

// ---------------------------------------------------------------- binary

function isCompare(op: BinaryOpName): op is CompareOpName {
  return (COMPARE_OP_NAMES as readonly string[]).includes(op);
}

function checkBinaryOp(op: BinaryOpName): void {
  if (!isCompare(op) && !(ARITH_OP_NAMES as readonly unknown[]).includes(op)) {
    throw new InvalidArgumentError(`binary: unknown op ${describeValue(op)}; valid ops are ${[...ARITH_OP_NAMES, ...COMPARE_OP_NAMES].join(', ')}`);
  }
}

function checkBinaryDtype(op: BinaryOpName, dtype: DType, what: string): void {
  if (dtype !== 'f32' && !INT_BINARY_OPS.includes(op)) {
    throw new DTypeError(`${op}: expects f32 operands, got ${dtype} ${what}`);
  }
}

/** a op b with NumPy broadcasting. Compare ops return f32 0/1 masks. */
export function binary(op: BinaryOpName, a: Tensor, b: Tensor): Tensor {
  checkBinaryOp(op);
  checkTensors(op, { a, b });
  assertSameDevice(a, b);
  if (a.dtype !== b.dtype) throw new DTypeError(`${op}: dtypes differ: ${a.dtype} ${fmt(a.shape)} and ${b.dtype} ${fmt(b.shape)}`);
  checkBinaryDtype(op, a.dtype, `${fmt(a.shape)} and ${fmt(b.shape)}`);
  const shape = broadcastShapes(op, a.shape, b.shape);
  if (!isCompare(op) && goesLazy(a.device, [a.dtype], shape)) {
    planElementwise(shape, [a.shape, b.shape]); // a broadcast too deep for the kernels throws here, as eagerly
    return lazyOp(op, [a, b], shape, a.device);
  }
  return runElementwise((layout) => binaryKernel({ op, dtype: a.dtype, layout }), [a, b], shape, isCompare(op) ? 'f32' : a.dtype);
}

export const add = (a: Tensor, b: Tensor): Tensor => binary('add', a, b);
export const sub = (a: Tensor, b: Tensor): Tensor => binary('sub', a, b);
export const mul = (a: Tensor, b: Tensor): Tensor => binary('mul', a, b);
export const div = (a: Tensor, b: Tensor): Tensor => binary('div', a, b);
export const pow = (a: Tensor, b: Tensor): Tensor => binary('pow', a, b);
export const maximum = (a: Tensor, b: Tensor): Tensor => binary('maximum', a, b);
export const minimum = (a: Tensor, b: Tensor): Tensor => binary('minimum', a, b);
export const eq = (a: Tensor, b: Tensor): Tensor => binary('eq', a, b);
export const ne = (a: Tensor, b: Tensor): Tensor => binary('ne', a, b);
export const lt = (a: Tensor, b: Tensor): Tensor => binary('lt', a, b);
export const le = (a: Tensor, b: Tensor): Tensor => binary('le', a, b);
export const gt = (a: Tensor, b: Tensor): Tensor => binary('gt', a, b);
export const ge = (a: Tensor, b: Tensor): Tensor => binary('ge', a, b);

/**
 * x op s (or s op x when `scalarFirst`) with the host scalar passed in the uniform block: no 0-d tensor is
 * allocated, and one pipeline serves every value of s.
 */
export function binaryScalar(op: BinaryOpName, x: Tensor, s: number, scalarFirst = false): Tensor {
  checkBinaryOp(op);
  checkTensors(op, { x });
  checkNumber(op, 'scalar', s);
  checkBinaryDtype(op, x.dtype, fmt(x.shape));
  if (x.dtype !== 'f32' && !Number.isInteger(s)) throw new DTypeError(`${op}: scalar ${s} is not an integer for ${x.dtype} ${fmt(x.shape)}`);
  const [lo, hi] = x.dtype === 'i32' ? [-(2 ** 31), 2 ** 31 - 1] : [0, 2 ** 32 - 1];
  if (x.dtype !== 'f32' && !(s >= lo && s <= hi)) throw new DTypeError(`${op}: scalar ${s} does not fit ${x.dtype} (range [${lo}, ${hi}]) for ${fmt(x.shape)}`);
  const device = x.device;
  if (!isCompare(op) && goesLazy(device, [x.dtype], x.shape)) return lazyOp(op, scalarFirst ? [s, x] : [x, s], x.shape, device);
  const buffer = x.buffer;
  const operands: OperandMode[] = scalarFirst ? ['uniform', 'full'] : ['full', 'uniform'];
  const spec = binaryKernel({ op, dtype: x.dtype, layout: { kind: 'vec4', operands } });
  const out = empty(x.shape, isCompare(op) ? 'f32' : x.dtype, device);
  const n = out.size;
  if (n === 0) return out;
  const bits = (x.dtype === 'f32' ? new UniformWriter().f32(s) : new UniformWriter().i32(s)).finish()[0];
  const uniform = new Uint32Array([n, Math.ceil(n / 4), scalarFirst ? bits : 0, scalarFirst ? 0 : bits, 0, 0, 0, 0]);
  return recordInto(out, () => device.dispatch(spec, [buffer, out.storage.buffer], uniform, linearDispatch(Math.ceil(n / 4), VEC4_CHUNK)));
}

/**
 * a·x + b·y for two same-shape f32 tensors in one dispatch (mulScalar and add would take two or three). Each
 * product is rounded to f32 before the sum, as the separate ops do (up to the shader compiler's FMA contraction).
 */
export function axpby(a: number, x: Tensor, b: number, y: Tensor): Tensor {
  checkTensors('axpby', { x, y });
  checkNumber('axpby', 'a', a);
  checkNumber('axpby', 'b', b);
  assertSameDevice(x, y);
  if (x.dtype !== 'f32' || y.dtype !== 'f32') throw new DTypeError(`axpby: needs f32 tensors, got ${x.dtype} ${fmt(x.shape)} and ${y.dtype} ${fmt(y.shape)}`);
  if (x.shape.length !== y.shape.length || x.shape.some((d, i) => d !== y.shape[i])) {
    throw new ShapeError(`axpby: shapes must be equal (no broadcasting), got ${fmt(x.shape)} and ${fmt(y.shape)}`);
  }
  if (goesLazy(x.device, ['f32'], x.shape)) {
    const mb = maxBuffers(x.device);
    const build = () => opNode('add', [opNode('mul', [x, a], x.shape, mb), opNode('mul', [y, b], x.shape, mb)], x.shape, mb);
    let node = build();
    if (!fits(node, mb)) {
      void x.buffer; // cut: realise the operands, then the combination reads two leaves
      void y.buffer;
      node = build();
    }
    return pendingTensor(node, x.device);
  }
  const buffers = [x.buffer, y.buffer];
  const out = empty(x.shape, 'f32', x.device);
  const n = out.size;
  if (n === 0) return out;
  const nvec = Math.ceil(n / 4);
  const uniform = new UniformWriter().u32(n).u32(nvec).u32(0).u32(0).f32(a).f32(b).u32(0).u32(0).finish();
  return recordInto(out, () => x.device.dispatch(axpbyKernel(), [...buffers, out.storage.buffer], uniform, linearDispatch(nvec, VEC4_CHUNK)));
}

/** relu's VJP, gy where x > 0 else 0, in one dispatch (f32; gy and x broadcast like a binary op). */
export function reluGrad(gy: Tensor, x: Tensor): Tensor {
  checkTensors('reluGrad', { gy, x });
  assertSameDevice(gy, x);
  if (gy.dtype !== 'f32' || x.dtype !== 'f32')
    throw new DTypeError(`reluGrad: needs f32 tensors, got ${gy.dtype} ${fmt(gy.shape)} and ${x.dtype} ${fmt(x.shape)}`);
  const shape = broadcastShapes('reluGrad', gy.shape, x.shape);
  if (goesLazy(gy.device, ['f32'], shape)) {
    planElementwise(shape, [gy.shape, x.shape]); // a broadcast too deep for the kernels throws here, as eagerly
    return lazyOp('reluGrad', [gy, x], shape, gy.device);
  }
  return runElementwise((layout) => reluGradKernel(layout), [gy, x], shape, 'f32');
}

export const addScalar = (x: Tensor, s: number): Tensor => binaryScalar('add', x, s);
export const subScalar = (x: Tensor, s: number): Tensor => binaryScalar('sub', x, s);
/** s − x. */
export const rsubScalar = (x: Tensor, s: number): Tensor => binaryScalar('sub', x, s, true);
export const mulScalar = (x: Tensor, s: number): Tensor => binaryScalar('mul', x, s);
export const divScalar = (x: Tensor, s: number): Tensor => binaryScalar('div', x, s);
/** s / x. */
export const rdivScalar = (x: Tensor, s: number): Tensor => binaryScalar('div', x, s, true);
export const powScalar = (x: Tensor, s: number): Tensor => binaryScalar('pow', x, s);
export const maximumScalar = (x: Tensor, s: number): Tensor => binaryScalar('maximum', x, s);
export const minimumScalar = (x: Tensor, s: number): Tensor => binaryScalar('minimum', x, s);

// ---------------------------------------------------------------- where, cast

/** cond ? a : b with all three broadcast together; cond is true where nonzero (any dtype). */
export function where(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  checkTensors('where', { cond, a, b });
  assertSameDevice(cond, a, b);
  if (a.dtype !== b.dtype) throw new DTypeError(`where: branch dtypes differ: ${a.dtype} ${fmt(a.shape)} and ${b.dtype} ${fmt(b.shape)}`);
  const shape = broadcastShapes('where', cond.shape, a.shape, b.shape);
  return runElementwise((layout) => whereKernel({ condDtype: cond.dtype, dtype: a.dtype, layout }), [cond, a, b], shape, a.dtype);
}

/** Converts dtype: f32 → int truncates toward zero (saturating, NaN → 0); i32 ↔ u32 keeps the bits. Always copies. */
export function cast(x: Tensor, dtype: DType): Tensor {
  checkTensors('cast', { x });
  checkDType(`cast of ${x.dtype} ${fmt(x.shape)}`, dtype);
  return runElementwise(() => castKernel({ from: x.dtype, to: dtype }), [x], x.shape, dtype);
}
