/**
 * @file Fused in-place update kernels for the SGD/Adam classes: one dispatch per parameter leaf updates the
 * parameter and its state buffers in their own storage (no temporaries, no graph). The arithmetic follows the
 * functional optimisers op for op, so both forms agree to f32 rounding.
 */
import { UniformWriter, type Device, type Tensor } from '@metagrad/tensor';

type KernelSpec = Parameters<Device['dispatch']>[0];

const WG = 256;
/** Contiguous elements per invocation: llvmpipe runs contiguous chunks much faster than interleaved access. */
const CHUNK = 16;
const BUILTINS = '@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>';
/** Loops `i` over this invocation's chunk (the body follows, then the closing brace). */
const CHUNK_LOOP = `let gi = wid.x * ${WG}u + lid.x + wid.y * nwg.x * ${WG}u;
  let first = gi * ${CHUNK}u;
  let last = min(first + ${CHUNK}u, u.n);
  for (var i = first; i < last; i++) {`;

/** Workgroups for n elements; Dawn drops grids over 65535 per dimension, so split into 2-D (kernels recover the linear index). */
function grid(n: number): [number, number, number] {
  const count = Math.max(1, Math.ceil(n / (WG * CHUNK)));
  if (count <= 65535) return [count, 1, 1];
  const y = Math.ceil(count / 65535);
  return [Math.ceil(count / y), y, 1];
}

/** SGD: g' = g + wd·p; with momentum b = first ? g' : μ·b + (1−τ)·g', g' = nesterov ? g' + μ·b : b; p −= lr·g'. */
function sgdKernel(momentum: boolean): KernelSpec {
  const bufDecl = momentum ? '@group(0) @binding(2) var<storage, read_write> b: array<f32>;' : '';
  const body = momentum
    ? `var m: f32;
  if ((u.flags & 2u) != 0u) { m = d; } else { m = u.momentum * b[i] + (1.0 - u.dampening) * d; }
  b[i] = m;
  if ((u.flags & 1u) != 0u) { d = d + u.momentum * m; } else { d = m; }`
    : '';
  return {
    key: `optim:sgd:${momentum ? 'momentum' : 'plain'}`,
    entryPoint: 'main',
    bindings: momentum ? ['write', 'read', 'write', 'uniform'] : ['write', 'read', 'uniform'],
    workgroupSize: [WG, 1, 1],
    code: `
struct U { n: u32, flags: u32, lr: f32, wd: f32, momentum: f32, dampening: f32 }
@group(0) @binding(0) var<storage, read_write> p: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
${bufDecl}
@group(0) @binding(${momentum ? 3 : 2}) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${CHUNK_LOOP}
    let w = p[i];
    var d = g[i];
    if (u.wd != 0.0) { d = d + u.wd * w; }
    ${body}
    p[i] = w - u.lr * d;
  }
}`,
  };
}

/**
 * Adam/AdamW with metagrad's denominator sqrt(v̂ + eps²) (see adam.ts): m = β1·m + (1−β1)·g,
 * v = β2·v + (1−β2)·g², p −= (lr/bc1)·m / sqrt(v/bc2 + eps²).
 */
const ADAM: KernelSpec = {
  key: 'optim:adam',
  entryPoint: 'main',
  bindings: ['write', 'read', 'write', 'write', 'uniform'],
  workgroupSize: [WG, 1, 1],
  code: `
struct U { n: u32, decoupled: u32, lr: f32, wd: f32, b1: f32, b2: f32, eps2: f32, bc1: f32, bc2: f32 }
@group(0) @binding(0) var<storage, read_write> p: array<f32>;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> m: array<f32>;
@group(0) @binding(3) var<storage, read_write> v: array<f32>;
@group(0) @binding(4) var<uniform> u: U;
@compute @workgroup_size(${WG})
fn main(${BUILTINS}) {
  ${CHUNK_LOOP}
    var w = p[i];
    var d = g[i];
    if (u.wd != 0.0) {
      if (u.decoupled != 0u) { w = w * (1.0 - u.lr * u.wd); } else { d = d + u.wd * w; }
    }
    let mi = u.b1 * m[i] + (1.0 - u.b1) * d;
    let vi = u.b2 * v[i] + (1.0 - u.b2) * (d * d);
    m[i] = mi;
    v[i] = vi;
    p[i] = w - (u.lr / u.bc1) * mi / sqrt(vi / u.bc2 + u.eps2);
  }
}`,
};

const SGD_PLAIN = sgdKernel(false);
const SGD_MOMENTUM = sgdKernel(true);

export interface SgdUpdate {
  lr: number;
  weightDecay: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  /** First step: the momentum buffer takes the gradient as is (torch's rule). */
  first: boolean;
}

/** p (and its momentum buffer, when given) updated in place from gradient g. */
export function sgdUpdateInPlace(p: Tensor, g: Tensor, buf: Tensor | null, h: SgdUpdate): void {
  const flags = (h.nesterov ? 1 : 0) | (h.first ? 2 : 0);
  const uniform = new UniformWriter().u32(p.size).u32(flags).f32(h.lr).f32(h.weightDecay).f32(h.momentum).f32(h.dampening).finish();
  // The written buffers bump their storage's version: a graph that saved p must not backpropagate through it.
  const buffers = buf ? [p.bufferForInPlaceWrite(), g.buffer, buf.bufferForInPlaceWrite()] : [p.bufferForInPlaceWrite(), g.buffer];
  p.device.dispatch(buf ? SGD_MOMENTUM : SGD_PLAIN, buffers, uniform, grid(p.size));
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

/** p, m, v updated in place from gradient g. */
export function adamUpdateInPlace(p: Tensor, g: Tensor, m: Tensor, v: Tensor, h: AdamUpdate): void {
  const uniform = new UniformWriter()
    .u32(p.size)
    .u32(h.decoupled ? 1 : 0)
    .f32(h.lr)
    .f32(h.weightDecay)
    .f32(h.beta1)
    .f32(h.beta2)
    .f32(h.eps * h.eps)
    .f32(h.bc1)
    .f32(h.bc2)
    .finish();
  const written = [p.bufferForInPlaceWrite(), g.buffer, m.bufferForInPlaceWrite(), v.bufferForInPlaceWrite()];
  p.device.dispatch(ADAM, written, uniform, grid(p.size));
}
