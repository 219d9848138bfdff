/** @file The differentiable op set: each op's recorded attributes, and the type of a VJP rule. */
import type { Device, DType, Shape, Tensor } from '@metagrad/tensor';

export interface Conv2dAttrs {
  stride?: number | readonly [number, number];
  padding?: number | readonly [number, number];
  dilation?: number | readonly [number, number];
  groups?: number;
}

export interface Pool2dAttrs {
  kernel: number | readonly [number, number];
  stride?: number | readonly [number, number];
  padding?: number | readonly [number, number];
}

export interface GridSampleAttrs {
  alignCorners?: boolean;
}

type None = Record<never, never>;
type Unary = None;
type Binary = None;
interface Axes {
  axes: number[];
  keepDims: boolean;
}

/** Attributes recorded with each op, keyed by op name: the keys of this interface are the op set. */
export interface PrimAttrs {
  // elementwise
  neg: Unary;
  exp: Unary;
  log: Unary;
  log1p: Unary;
  expm1: Unary;
  sin: Unary;
  cos: Unary;
  tanh: Unary;
  sigmoid: Unary;
  sqrt: Unary;
  rsqrt: Unary;
  recip: Unary;
  abs: Unary;
  relu: Unary;
  square: Unary;
  add: Binary;
  sub: Binary;
  mul: Binary;
  div: Binary;
  pow: Binary;
  maximum: Binary;
  minimum: Binary;
  addScalar: { scalar: number };
  mulScalar: { scalar: number };
  powScalar: { scalar: number };
  axpby: { a: number; b: number };
  reluGrad: None;
  where: None;
  cast: { dtype: DType };
  // reductions (softmax family and mean are composites with fused forwards)
  sum: Axes;
  mean: Axes;
  dot: None;
  max: Axes;
  min: Axes;
  logsumexp: Axes;
  softmax: { axis: number };
  logSoftmax: { axis: number };
  // movement
  reshape: None;
  permute: { perm: number[] };
  expand: None;
  slice: { starts: number[]; steps: number[] };
  pad: { pads: [number, number][] };
  concat: { axis: number };
  flip: { axes: number[] };
  gather: { axis: number };
  indexSelect: { axis: number };
  scatterAdd: { axis: number };
  // linear algebra
  matmul: { transA: boolean; transB: boolean };
  // convolution, pooling, resampling
  conv2d: Conv2dAttrs;
  conv2dInputGrad: Conv2dAttrs;
  conv2dFilterGrad: Conv2dAttrs;
  maxPool2d: Pool2dAttrs;
  maxPool2dBackward: Pool2dAttrs;
  avgPool2d: Pool2dAttrs;
  avgPool2dBackward: Pool2dAttrs;
  affineGrid: { alignCorners: boolean };
  gridSample: GridSampleAttrs;
  gridSampleInputGrad: GridSampleAttrs;
  gridSampleGridGrad: GridSampleAttrs;
  // user-defined
  custom: CustomAttrs;
  /** A value that must not be differentiated (a once-differentiable customVjp's gradient). */
  barrier: { message: string };
}

export type Prim = keyof PrimAttrs;

/** What customVjp records: the user's backward and whether it is itself written in differentiable ops. */
export interface CustomAttrs {
  name: string;
  backward: (gy: Tensor, saved: Tensor[], needsInputGrad: readonly boolean[]) => (Tensor | null | undefined)[];
  twiceDifferentiable: boolean;
  /** How many of the saved tensors are the op's inputs (the rest are extra tensors `fwd` chose to save). */
  savedInputs: number;
}

/** Everything a VJP rule may use. With createGraph the tensors carry nodes and the rule's ops are recorded. */
export interface VjpContext<P extends Prim> {
  /** Gradient with respect to the op's output. */
  gy: Tensor;
  saved: Tensor[];
  attrs: PrimAttrs[P];
  inputShapes: readonly Shape[];
  outputShape: Shape;
  /** Which inputs need a gradient; rules may return null for the others. */
  needs: readonly boolean[];
  device: Device;
}

/** Gradients with respect to each input, written in differentiable ops; null for no gradient. */
export type VjpRule<P extends Prim> = (ctx: VjpContext<P>) => (Tensor | null | undefined)[];

export type RuleTable<K extends Prim> = { [P in K]: VjpRule<P> };
