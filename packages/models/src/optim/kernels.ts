/**
 * @file Fused in-place update kernels for the SGD/Adam classes: one dispatch per parameter leaf updates the
 * parameter and its state buffers in their own storage (no temporaries, no graph). The arithmetic follows the
 * functional optimisers op for op, so both forms agree to f32 rounding. The WGSL is rendered by renderKernel:
 * the parameter and its state are `read_write` inputs, bound in the order p, g, state…, then the uniform block.
 */
import { fields, linearDispatch, memoKernel, type KernelIR, type KernelSpec } from '@metagrad/kernels-wgsl';
import { UniformWriter, type Tensor } from '@metagrad/tensor';

const WG = 256;
/** Contiguous elements per invocation: llvmpipe runs contiguous chunks much faster than interleaved access. */
const CHUNK = 16;
const optimCache = new Map<string, KernelSpec>();

/** The update kernel shape shared by SGD and Adam: `update` runs for each element `i` of this invocation's chunk. */
function chunkedUpdate(name: string, state: string[], uniforms: [string, string][], update: string): KernelIR {
  const rw = (n: string) => ({ name: n, dtype: 'f32', access: 'read_write' }) as const;
  return {
    name,
    inputs: [rw('p'), { name: 'g', dtype: 'f32' }, ...state.map(rw)],
    outputs: [],
    uniforms,
    workgroupSize: WG,
    body: `let first = gi * ${CHUNK}u;
  let last = min(first + ${CHUNK}u, u.n);
  for (var i = first; i < last; i++) {
    ${update.trim()}
  }`,
  };
}

/** SGD: g' = g + wd·p; with momentum b = first ? g' : μ·b + (1−τ)·g', g' = nesterov ? g' + μ·b : b; p −= lr·g'. */
export function sgdKernel(momentum: boolean): KernelSpec {
  const name = `optim:sgd:${momentum ? 'momentum' : 'plain'}`;
  return memoKernel(optimCache, name, () => {
    const momentumStep = `var m: f32;
    if ((u.flags & 2u) != 0u) { m = d; } else { m = u.momentum * b[i] + (1.0 - u.dampening) * d; }
    b[i] = m;
    if ((u.flags & 1u) != 0u) { d = d + u.momentum * m; } else { d = m; }`;
    return chunkedUpdate(
      name,
      momentum ? ['b'] : [],
      [...fields('n flags'), ...fields('lr wd momentum dampening', 'f32')],
      `
    let w = p[i];
    var d = g[i];
    if (u.wd != 0.0) { d = d + u.wd * w; }
    ${
      momentum
        ? `${momentumStep}
    `
        : ''
    }p[i] = w - u.lr * d;`,
    );
  });
}

/**
 * Adam/AdamW with metagrad's denominator sqrt(v̂ + eps²) (see adam.ts): m = β1·m + (1−β1)·g,
 * v = β2·v + (1−β2)·g², p −= (lr/bc1)·m / sqrt(v/bc2 + eps²).
 */
export function adamKernel(): KernelSpec {
  return memoKernel(optimCache, 'optim:adam', () =>
    chunkedUpdate(
      'optim:adam',
      ['m', 'v'],
      [...fields('n decoupled'), ...fields('lr wd b1 b2 eps2 bc1 bc2', 'f32')],
      `
    var w = p[i];
    var d = g[i];
    if (u.wd != 0.0) {
      if (u.decoupled != 0u) { w = w * (1.0 - u.lr * u.wd); } else { d = d + u.wd * w; }
    }
    let mi = u.b1 * m[i] + (1.0 - u.b1) * d;
    let vi = u.b2 * v[i] + (1.0 - u.b2) * (d * d);
    m[i] = mi;
    v[i] = vi;
    p[i] = w - (u.lr / u.bc1) * mi / sqrt(vi / u.bc2 + u.eps2);`,
    ),
  );
}

export interface SgdUpdate {
  lr: number;
  weightDecay: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  /** First step: the momentum buffer takes the gradient as is (torch's rule). */
  first: boolean;
}

/**
 * p (and its momentum buffer, when given) updated in place from gradient g. `hypers` may be a function: it is called
 * at the dispatch and again at each replay of a compiled step (a scheduled lr, the first-step flag).
 */
export function sgdUpdateInPlace(p: Tensor, g: Tensor, buf: Tensor | null, hypers: SgdUpdate | (() => SgdUpdate)): void {
  const size = p.size;
  const uniform = () => {
    const h = typeof hypers === 'function' ? hypers() : hypers;
    const flags = (h.nesterov ? 1 : 0) | (h.first ? 2 : 0);
    return new UniformWriter().u32(size).u32(flags).f32(h.lr).f32(h.weightDecay).f32(h.momentum).f32(h.dampening).finish();
  };
  // The written buffers bump their storage's version: a graph that saved p must not backpropagate through it.
  const buffers = buf ? [p.bufferForInPlaceWrite(), g.buffer, buf.bufferForInPlaceWrite()] : [p.bufferForInPlaceWrite(), g.buffer];
  p.device.dispatch(sgdKernel(buf !== null), buffers, typeof hypers === 'function' ? uniform : uniform(), linearDispatch(p.size, CHUNK, WG));
}

export interface AdamUpdate {
  lr: number;
  weightDecay: number;
  decoupled: boolean;
  beta1: number;
  beta2: number;
  eps: number;
  /** Bias corrections 1 − β^t for this step. */
  bc1: number;
  bc2: number;
}

/** p, m, v updated in place from gradient g; `hypers` as in sgdUpdateInPlace (Adam's bias corrections move every step). */
export function adamUpdateInPlace(p: Tensor, g: Tensor, m: Tensor, v: Tensor, hypers: AdamUpdate | (() => AdamUpdate)): void {
  const size = p.size;
  const uniform = () => {
    const h = typeof hypers === 'function' ? hypers() : hypers;
    return new UniformWriter()
      .u32(size)
      .u32(h.decoupled ? 1 : 0)
      .f32(h.lr)
      .f32(h.weightDecay)
      .f32(h.beta1)
      .f32(h.beta2)
      .f32(h.eps * h.eps)
      .f32(h.bc1)
      .f32(h.bc2)
      .finish();
  };
  const written = [p.bufferForInPlaceWrite(), g.buffer, m.bufferForInPlaceWrite(), v.bufferForInPlaceWrite()];
  p.device.dispatch(adamKernel(), written, typeof hypers === 'function' ? uniform : uniform(), linearDispatch(p.size, CHUNK, WG));
}
