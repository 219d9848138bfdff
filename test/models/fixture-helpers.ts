/** @file Helpers for the PyTorch golden fixtures of test/fixtures/models.json (written by gen_models.py). */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import * as ag from '@metagrad/autograd';
import * as raw from '@metagrad/tensor';
import type { Device, Tensor } from '@metagrad/tensor';
import { type ParamTree, leaves, mapTree, namedLeaves } from '@metagrad/models';

export interface Entry {
  shape: number[];
  b64?: string;
  dtype?: 'f16';
  ints?: number[];
}

export interface GoldenCase {
  params: Record<string, Entry>;
  inputs: Record<string, Entry>;
  output: Entry;
  cotangent: Entry;
  grads: Record<string, Entry>;
  second?: Record<string, Entry>;
  runningMean?: Entry;
  runningVar?: Entry;
  noise?: Record<string, Entry>;
}

let cache: Record<string, GoldenCase> | undefined;

export function goldenCase(name: string): GoldenCase {
  cache ??= JSON.parse(readFileSync(new URL('../fixtures/models.json', import.meta.url), 'utf8')).cases;
  const c = cache![name];
  if (!c) throw new Error(`no golden case '${name}' in test/fixtures/models.json (regenerate with gen_models.py)`);
  return c;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** The entry's values as float32. */
export function host(e: Entry): Float32Array {
  if (e.ints) return Float32Array.from(e.ints);
  const bytes = Buffer.from(e.b64!, 'base64');
  const copy = new Uint8Array(bytes).buffer;
  if (e.dtype === 'f16') return Float32Array.from(new Uint16Array(copy), halfToFloat);
  return new Float32Array(copy);
}

export function upload(e: Entry, device: Device): Tensor {
  if (e.ints) return raw.tensor(Int32Array.from(e.ints), e.shape, 'i32', device);
  return raw.tensor(host(e), e.shape, 'f32', device);
}

/** `like`'s structure with every leaf replaced by the fixture's value at the same path; all paths must match. */
export function paramsFrom<T extends ParamTree>(c: GoldenCase, like: T, device: Device): T {
  expect(Object.keys(namedLeaves(like)).sort()).toEqual(Object.keys(c.params).sort());
  return mapTree(like, (t, path) => {
    expect([...t.shape], `shape of ${path}`).toEqual(c.params[path].shape);
    return upload(c.params[path], device);
  });
}

/** max |a − e| ≤ atol + rtol·max|e| (a scale-aware bound that suits outputs of any magnitude). */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rtol = 1e-4, atol = 1e-5): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    scale = Math.max(scale, Math.abs(expected[i]));
    worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  }
  expect(worst, `${what}: max error ${worst} against scale ${scale}`).toBeLessThanOrEqual(atol + rtol * scale);
}

export interface GoldenOptions {
  device: Device;
  /** Relative tolerance against the largest |expected| (default 1e-4; 3e-3 for the float16-stored cases). */
  rtol?: number;
}

/**
 * Runs `forward(params, inputs)` on the fixture's values, backpropagates sum(out · cotangent) to the parameters
 * and to every input with a stored gradient, and compares the output and each gradient with PyTorch's.
 */
export async function checkGolden<T extends ParamTree>(
  name: string,
  like: T,
  forward: (params: T, inputs: Record<string, Tensor>) => Tensor,
  opts: GoldenOptions,
): Promise<{ params: T; case: GoldenCase }> {
  const c = goldenCase(name);
  const device = opts.device;
  const rtol = opts.rtol ?? (c.output.dtype === 'f16' ? 3e-3 : 1e-4);
  const params = paramsFrom(c, like, device);
  const inputs = Object.fromEntries(Object.entries(c.inputs).map(([k, e]) => [k, upload(e, device)]));
  const paramNames = Object.keys(namedLeaves(params));
  const inputNames = Object.keys(c.grads).filter((k) => !paramNames.includes(k));
  const wrt = [...leaves(params), ...inputNames.map((k) => inputs[k])];
  wrt.forEach((t) => ag.requiresGrad(t));
  const out = forward(params, inputs);
  expect([...out.shape], `${name}: output shape`).toEqual(c.output.shape);
  expectClose(await out.toArray(), host(c.output), `${name}: output`, rtol);
  const cot = upload(c.cotangent, device);
  const loss = raw.tidy(() => ag.sum(ag.mul(out, cot)));
  const grads = ag.grad(loss, wrt);
  const names = [...paramNames, ...inputNames];
  for (let i = 0; i < names.length; i++) {
    expectClose(await grads[i].toArray(), host(c.grads[names[i]]), `${name}: gradient of ${names[i]}`, rtol);
  }
  raw.dispose([out, cot, loss, grads, Object.values(inputs)]);
  return { params, case: c };
}
