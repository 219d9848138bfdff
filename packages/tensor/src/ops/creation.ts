/** @file Creation ops: tensors from host data, constants, ranges, identity. */
import { fillKernel, linearDispatch, type DType } from '@metagrad/kernels-wgsl';
import type { Device } from '../device';
import { DTypeError, ShapeError } from '../errors';
import { getDefaultDevice } from '../runtime';
import { BYTES_PER_ELEMENT, checkShape, sizeOf, Storage, Tensor, type Shape } from '../tensor';

type HostData = ArrayLike<number> | Float32Array | Int32Array | Uint32Array;

/** An uninitialised tensor (internal: every op allocates its output with this). */
export function empty(shape: Shape, dtype: DType = 'f32', device: Device = getDefaultDevice()): Tensor {
  checkShape(shape);
  return new Tensor(Storage.allocate(device, sizeOf(shape) * BYTES_PER_ELEMENT), [...shape], dtype);
}

function hostArray(data: HostData, dtype: DType): Float32Array | Int32Array | Uint32Array {
  if (dtype === 'f32') return data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
  if (dtype === 'i32') return data instanceof Int32Array ? data : Int32Array.from(data as ArrayLike<number>);
  return data instanceof Uint32Array ? data : Uint32Array.from(data as ArrayLike<number>);
}

/** Creates a tensor from host data; `shape` defaults to 1-D. Nested arrays are not accepted: pass flat data. */
export function tensor(data: HostData | number, shape?: Shape, dtype?: DType, device: Device = getDefaultDevice()): Tensor {
  const dt: DType = dtype ?? (data instanceof Int32Array ? 'i32' : data instanceof Uint32Array ? 'u32' : 'f32');
  if (typeof data === 'number') return full(shape ?? [], data, dt, device);
  const flat = hostArray(data, dt);
  const shp = shape ?? [flat.length];
  checkShape(shp);
  if (sizeOf(shp) !== flat.length) {
    throw new ShapeError(`tensor(): ${flat.length} values cannot fill shape [${shp.join(', ')}] (${sizeOf(shp)} elements)`);
  }
  const t = empty(shp, dt, device);
  if (flat.length > 0) device.write(t.storage.buffer, flat);
  return t;
}

/** Encodes a scalar as the 32-bit pattern of `dtype`. */
export function scalarBits(value: number, dtype: DType): number {
  const buf = new ArrayBuffer(4);
  if (dtype === 'f32') new Float32Array(buf)[0] = value;
  else if (dtype === 'i32') new Int32Array(buf)[0] = value;
  else new Uint32Array(buf)[0] = value;
  return new Uint32Array(buf)[0];
}

export function full(shape: Shape, value: number, dtype: DType = 'f32', device: Device = getDefaultDevice()): Tensor {
  if (dtype !== 'f32' && !Number.isInteger(value)) throw new DTypeError(`full(): ${value} is not an integer for dtype ${dtype}`);
  const t = empty(shape, dtype, device);
  if (t.size > 0) {
    device.dispatch(fillKernel({ dtype }), [t.storage.buffer], new Uint32Array([t.size, scalarBits(value, dtype)]), linearDispatch(t.size));
  }
  return t;
}

export function zeros(shape: Shape, dtype: DType = 'f32', device?: Device): Tensor {
  return full(shape, 0, dtype, device);
}

export function ones(shape: Shape, dtype: DType = 'f32', device?: Device): Tensor {
  return full(shape, 1, dtype, device);
}

/** Like torch.arange: [start, stop) in steps of `step`. */
export function arange(start: number, stop?: number, step = 1, dtype: DType = 'f32', device?: Device): Tensor {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new ShapeError('arange(): step must be nonzero');
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = start + i * step;
  return tensor(data, [n], dtype, device);
}

/** n×m identity (m defaults to n). */
export function eye(n: number, m = n, dtype: DType = 'f32', device?: Device): Tensor {
  const data = new Float32Array(n * m);
  for (let i = 0; i < Math.min(n, m); i++) data[i * m + i] = 1;
  return tensor(data, [n, m], dtype, device);
}
