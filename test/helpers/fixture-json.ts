/** @file Test helper: read a JSON golden fixture from test/fixtures and upload its { shape, data } arrays as f32 tensors. */
import { readFileSync } from 'node:fs';
import { tensor, type Device, type Tensor } from '@metagrad/tensor';

/** A tensor as the fixture generators write it: row-major data and its shape. */
export interface FixtureTensor {
  shape: number[];
  data: number[];
}

/** Parses test/fixtures/<name>; the caller names the shape the generator writes. */
export function readFixture<F>(name: string): F {
  return JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as F;
}

/** The fixture tensor as an f32 tensor on `device` (the caller's to dispose). */
export const upload = (t: FixtureTensor, device: Device): Tensor => tensor(Float32Array.from(t.data), t.shape, 'f32', device);
