/** @file Helpers shared by raw ops: uniform packing, broadcasting, axis normalisation, shape formatting. */
import { ShapeError } from '../errors';
import type { Shape } from '../tensor';

/** Packs uniform fields as 32-bit words in declaration order (WGSL struct of u32/i32/f32 scalars and arrays). */
export class UniformWriter {
  private readonly words: number[] = [];
  private readonly view = new DataView(new ArrayBuffer(4));

  u32(v: number): this {
    this.words.push(v >>> 0);
    return this;
  }

  i32(v: number): this {
    this.words.push(v | 0);
    return this;
  }

  f32(v: number): this {
    this.view.setFloat32(0, v, true);
    this.words.push(this.view.getUint32(0, true));
    return this;
  }

  /** Appends `values` padded with `fill` to `length` words (fixed-size arrays of rank-dependent data). */
  u32s(values: readonly number[], length = values.length, fill = 0): this {
    for (let i = 0; i < length; i++) this.u32(i < values.length ? values[i] : fill);
    return this;
  }

  /** Pads to a multiple of 4 words (16 bytes), as uniform structs containing vec4 arrays need. */
  finish(): Uint32Array {
    while (this.words.length % 4 !== 0) this.words.push(0);
    return Uint32Array.from(this.words);
  }
}

export function fmt(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** NumPy broadcasting of any number of shapes; throws ShapeError naming `op` and all shapes. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i];
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else throw new ShapeError(`${op}: shapes ${shapes.map(fmt).join(' and ')} cannot be broadcast together`);
    }
  }
  return out;
}

/** Row-major strides; broadcast strides put 0 on stretched dims when aligned to `outShape`. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const strides = stridesOf(shape);
  const off = outShape.length - shape.length;
  return outShape.map((d, i) => (i < off || shape[i - off] === 1 ? 0 : strides[i - off]));
}

/** Normalises possibly-negative axes, checks range and duplicates; undefined means all axes. */
export function normalizeAxes(op: string, axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : [...axes];
  const out = list.map((a) => {
    const n = a < 0 ? a + rank : a;
    if (!Number.isInteger(n) || n < 0 || n >= rank) throw new ShapeError(`${op}: axis ${a} is out of range for rank ${rank}`);
    return n;
  });
  if (new Set(out).size !== out.length) throw new ShapeError(`${op}: repeated axis in [${list.join(', ')}]`);
  return out.sort((x, y) => x - y);
}

/**
 * mulberry32: a tiny seeded host PRNG in [0, 1), for reproducible test data and gradcheck directions that must
 * not depend on the GPU random ops under test.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
