/** @file Tensor handles over reference-counted GPU storage, with tidy scopes and exact memory accounting. */
import type { DType } from '@metagrad/kernels-wgsl';
import type { Device } from './device';
import { DeviceMismatchError, DisposedTensorError, InvalidArgumentError, ShapeError } from './errors';

export type { DType };
export type Shape = readonly number[];
export type TypedArrayFor<D extends DType> = D extends 'f32' ? Float32Array : D extends 'i32' ? Int32Array : Uint32Array;

export const BYTES_PER_ELEMENT = 4;

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function checkShape(shape: Shape, what = 'shape'): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new ShapeError(`${what} [${shape.join(', ')}] has an invalid dimension ${d}`);
  }
}

/**
 * GPU storage shared by tensor handles (reshape shares it). Each handle, tape node or view holds one
 * reference; at zero the buffer goes back to the device pool.
 *
 * `version` counts writes into the existing buffer (PyTorch's version counter): autograd records it when it saves
 * a tensor for backward and refuses to use the tensor if it changed. A fresh storage is at version 0; every path
 * that overwrites a live storage must go through `Tensor.bufferForInPlaceWrite()` (or call `bumpVersion()`).
 */
export class Storage {
  private refs = 1;
  private writes = 0;
  /** References held by pending expressions (lazy fusion): they keep the buffer out of the pool, not in bytesInUse. */
  private exprRefs = 0;
  private buf: GPUBuffer | null;
  /**
   * Set while this storage holds a pending fused expression instead of a buffer (METAGRAD_FUSION): the first
   * access to `buffer` realises it. Null for every ordinary storage.
   */
  pending: PendingValue | null = null;
  /** Pending expressions that read this storage; an in-place write realises them first (lazy fusion). */
  readers: Set<PendingValue> | null = null;

  constructor(
    readonly device: Device,
    buffer: GPUBuffer | null,
    /** Logical bytes (element count × 4), the figure memory accounting uses. */
    readonly byteSize: number,
  ) {
    this.buf = buffer;
    device.trackAlloc(byteSize);
    if (buffer) device.noteOwner(buffer, this);
    device.recording?.storages.push(this);
  }

  static allocate(device: Device, byteSize: number): Storage {
    return new Storage(device, device.pool.acquire(Math.max(byteSize, 4)), byteSize);
  }

  /**
   * A storage whose values are a pending expression (lazy fusion). It counts its logical bytes in `bytesInUse`
   * from now on, exactly as the eager op's output would, so memory figures match with fusion on or off.
   */
  static lazy(device: Device, byteSize: number, pending: PendingValue): Storage {
    const s = new Storage(device, null, byteSize);
    s.pending = pending;
    return s;
  }

  /** The GPU buffer; realises a pending expression first (one fused dispatch). */
  get buffer(): GPUBuffer {
    if (this.pending) this.pending.realize();
    return this.buf!;
  }

  /** Lazy fusion's realisation: gives a pending storage its freshly written buffer. */
  attachBuffer(buffer: GPUBuffer): void {
    this.device.noteOwner(buffer, this);
    this.buf = buffer;
    this.pending = null;
  }

  get refCount(): number {
    return this.refs;
  }

  /** Whether anything still holds this storage (a handle, a view, a tape node or a pending expression). */
  get isAlive(): boolean {
    return this.refs > 0 || this.exprRefs > 0;
  }

  /** How many in-place writes this storage has seen since it was allocated (host-side; costs no GPU work). */
  get version(): number {
    return this.writes;
  }

  /** Records an in-place write into this storage (every handle and view on it sees the new version). */
  bumpVersion(): void {
    // A pending expression reading the old values must be computed before the write is recorded.
    if (this.readers) for (const r of [...this.readers]) r.realize();
    this.writes++;
    this.device.recording?.commands.push({ k: 'bump', storage: this });
  }

  retain(): this {
    if (this.refs <= 0) throw new DisposedTensorError('retain() on freed storage');
    this.refs++;
    return this;
  }

  release(): void {
    if (this.refs <= 0) throw new DisposedTensorError('release() on freed storage');
    if (--this.refs === 0) {
      this.device.trackFree(this.byteSize);
      if (this.pending) {
        const p = this.pending;
        this.pending = null;
        p.drop(); // never computed: it only lets go of its leaves
      } else if (this.exprRefs === 0) {
        this.returnBuffer();
      }
    }
  }

  /** A pending expression starts reading this (realised) storage. */
  exprRetain(): void {
    this.exprRefs++;
  }

  /** A pending expression stops reading this storage (realised or dropped). */
  exprRelease(): void {
    if (--this.exprRefs === 0 && this.refs === 0) this.returnBuffer();
  }

  private returnBuffer(): void {
    if (this.buf && !this.device.isDestroyed) this.device.pool.release(this.buf);
  }
}

/** A pending fused value (packages/tensor/src/lazy): realises itself into its storage, or drops its leaves. */
export interface PendingValue {
  realize(): void;
  drop(): void;
}

let nextTensorId = 1;

/**
 * Autograd's per-tensor record; opaque to this package (one-way dependencies). Nodes are reference-counted:
 * every tensor handle pointing at a node holds one reference, released when the handle is disposed, so a graph's
 * saved tensors are freed as soon as nothing can reach it any more.
 */
export interface GradNodeLike {
  readonly kind: string;
  retain(): void;
  release(): void;
}

/**
 * Makes a handle valid for one version of its storage only (autograd's saved tensors): reading its buffer after an
 * in-place write into the storage throws `stale(current)` instead of handing out the new values.
 */
export interface VersionPin {
  readonly version: number;
  stale(current: number): Error;
}

export class Tensor {
  readonly id = nextTensorId++;
  readonly size: number;
  private disposedFlag = false;
  /** Set by autograd: whether gradients should flow to this tensor. */
  requiresGrad = false;
  /** Accumulated gradient of a leaf after `backward()`. */
  grad: Tensor | null = null;
  private nodeRef: GradNodeLike | null = null;
  private versionPin: VersionPin | null = null;
  /** Optional debug name. */
  name?: string;

  constructor(
    readonly storage: Storage,
    readonly shape: Shape,
    readonly dtype: DType = 'f32',
  ) {
    this.size = sizeOf(shape);
    if (this.size * BYTES_PER_ELEMENT > storage.byteSize) {
      throw new ShapeError(`shape [${shape.join(', ')}] needs ${this.size * 4} bytes, storage has ${storage.byteSize}`);
    }
    storage.device.liveTensors++;
    storage.device.recording?.tensors.push(this);
    currentScope()?.track(this);
    for (const s of asyncScopes) s.push(this);
  }

  /** The autograd node of this tensor (its producer, or a leaf accumulator); null when not tracked. */
  get node(): GradNodeLike | null {
    return this.nodeRef;
  }

  /** Points this handle at an autograd node, holding a reference on it (autograd's use only). */
  set node(n: GradNodeLike | null) {
    if (n === this.nodeRef) return;
    n?.retain();
    this.nodeRef?.release();
    this.nodeRef = n;
  }

  get device(): Device {
    return this.storage.device;
  }

  get rank(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this.disposedFlag;
  }

  /**
   * The GPU buffer, checked: throws DisposedTensorError if this handle was disposed, and the pin's error
   * (InPlaceModificationError) if the handle is pinned to a storage version that an in-place write replaced.
   */
  get buffer(): GPUBuffer {
    this.assertAlive();
    this.assertVersion();
    return this.storage.buffer;
  }

  /** Pins this handle (and views made from it) to its storage's version `pin.version` (autograd's use). */
  pinVersion(pin: VersionPin): this {
    this.versionPin = pin;
    return this;
  }

  /** Throws the pin's error if this handle is pinned and its storage was written in place since; else a no-op. */
  assertVersion(): void {
    const pin = this.versionPin;
    if (pin && this.storage.version !== pin.version) throw pin.stale(this.storage.version);
  }

  /**
   * The GPU buffer for a kernel or upload that overwrites this tensor's existing storage in place (optimiser
   * steps): checked like `buffer`, and bumps the storage's version so that a graph which saved this tensor (or
   * a view of it) refuses to backpropagate through the old values.
   */
  bufferForInPlaceWrite(): GPUBuffer {
    this.assertAlive('write in place into');
    this.storage.bumpVersion();
    return this.storage.buffer;
  }

  assertAlive(op = 'use'): void {
    if (this.disposedFlag) {
      throw new DisposedTensorError(`cannot ${op} tensor #${this.id}${this.name ? ` '${this.name}'` : ''} [${this.shape.join(', ')}]: it was disposed`);
    }
  }

  /** Drops this handle's reference. Idempotent. Its `.grad` is disposed too. */
  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    this.storage.device.liveTensors--;
    this.storage.release();
    this.node = null; // releases the autograd node reference
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** A new handle on the same storage with another shape (no copy). */
  view(shape: Shape): Tensor {
    this.assertAlive('reshape');
    checkShape(shape);
    if (sizeOf(shape) !== this.size) {
      throw new ShapeError(`cannot view [${this.shape.join(', ')}] (${this.size} elements) as [${shape.join(', ')}]`);
    }
    const v = new Tensor(this.storage.retain(), [...shape], this.dtype);
    v.versionPin = this.versionPin; // a view of a saved tensor is as stale as the tensor
    return v;
  }

  /** Reads the data back: Float32Array for f32, Int32Array for i32, Uint32Array for u32. */
  async toArray(): Promise<Float32Array | Int32Array | Uint32Array> {
    this.assertAlive('read');
    this.assertVersion();
    const bytes = await this.device.read(this.storage.buffer, this.size * BYTES_PER_ELEMENT);
    if (this.dtype === 'f32') return new Float32Array(bytes);
    if (this.dtype === 'i32') return new Int32Array(bytes);
    return new Uint32Array(bytes);
  }

  /** Reads a single-element tensor as a number. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new ShapeError(`item() needs a single-element tensor, got [${this.shape.join(', ')}]`);
    return (await this.toArray())[0];
  }

  toString(): string {
    return `Tensor#${this.id}(${this.dtype}[${this.shape.join(', ')}]${this.requiresGrad ? ', requiresGrad' : ''}${this.disposedFlag ? ', disposed' : ''})`;
  }
}

/** Throws DeviceMismatchError naming each operand's device unless all tensors live on the first one's device. */
export function assertSameDevice(a: Tensor, ...rest: Tensor[]): void {
  for (const b of rest) {
    if (a.device !== b.device) {
      const all = [a, ...rest].map((t) => `${t} on ${t.device}`).join(', ');
      throw new DeviceMismatchError(`tensors live on different devices: ${all}`);
    }
  }
}

// ---------------------------------------------------------------- scopes

class Scope {
  readonly tensors: Tensor[] = [];
  track(t: Tensor): void {
    this.tensors.push(t);
  }
}

const scopeStack: Scope[] = [];
/** Tensors made while each `scope()` body runs (across its awaits), innermost last. */
const asyncScopes: Tensor[][] = [];
const kept = new WeakSet<Tensor>();

function currentScope(): Scope | undefined {
  return scopeStack[scopeStack.length - 1];
}

/** Marks a tensor to survive the enclosing `tidy` (it then belongs to the caller, who disposes it). */
export function keep<T extends Tensor>(t: T): T {
  kept.add(t);
  return t;
}

/** Whether `keep()` marked this tensor to survive the scopes it was made in. */
export function isKept(t: Tensor): boolean {
  return kept.has(t);
}

/** Collects every Tensor reachable in a returned value (tensors, arrays, plain objects, Maps). */
export function collectTensors(value: unknown, out = new Set<Tensor>()): Set<Tensor> {
  if (value instanceof Tensor) out.add(value);
  else if (Array.isArray(value)) for (const v of value) collectTensors(v, out);
  else if (value instanceof Map) for (const v of value.values()) collectTensors(v, out);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectTensors(v, out);
  }
  return out;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
}

/**
 * For a scope (tidy, noGrad) that refused an async body after calling it: the caller gets an error instead of the
 * promise, so nobody can reach what it resolves to. Disposes the tensors it resolves to, and swallows a later
 * rejection (the refusal was already reported; an unhandled rejection would only crash the process). Returns
 * whether `result` was a promise.
 */
export function abandonAsyncResult(result: unknown): boolean {
  if (!isThenable(result)) return false;
  result.then(
    (value) => dispose(value),
    () => undefined,
  );
  return true;
}

/**
 * Runs `fn` and disposes every tensor created inside it except those reachable from its result or `keep()`-ed.
 * Results move to the enclosing scope. Synchronous on purpose: an async body would let other code's tensors
 * land in this scope. An async body is refused with InvalidArgumentError once it returns its promise: the
 * tensors it made up to its first await are disposed then, and those its promise resolves to when it settles;
 * the body itself keeps running (nothing can stop it), and tensors it makes after its first await but does not
 * return are not tracked by this scope (dispose them in the body).
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Scope();
  scopeStack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    for (const t of scope.tensors) if (!kept.has(t)) t.dispose();
    throw e;
  } finally {
    scopeStack.pop();
  }
  if (abandonAsyncResult(result)) {
    for (const t of scope.tensors) if (!kept.has(t)) t.dispose();
    throw new InvalidArgumentError(
      'tidy() body must be synchronous (it returned a promise): its tensors made so far were disposed and the async ' +
        'body keeps running untracked; use explicit dispose() (or a synchronous tidy per step) for async code',
    );
  }
  const survivors = collectTensors(result);
  const parent = currentScope();
  for (const t of scope.tensors) {
    if (survivors.has(t) || kept.has(t)) {
      if (!kept.has(t)) parent?.track(t);
    } else {
      t.dispose();
    }
  }
  return result;
}

/**
 * The async-safe `tidy`: awaits `fn` and disposes every tensor made while it ran (across its awaits) except those
 * reachable from its result or `keep()`-ed; on a throw, every tensor it made. Tensors are caught by time, not by
 * call stack: run one scope at a time per program flow (tensors another concurrent task makes meanwhile would be
 * caught too). A tensor made inside and stored elsewhere (optimiser state) must be `keep()`-ed or made outside.
 */
export async function scope<T>(fn: () => Promise<T> | T): Promise<T> {
  const made: Tensor[] = [];
  asyncScopes.push(made);
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    for (const t of made) if (!kept.has(t)) t.dispose();
    throw e;
  } finally {
    asyncScopes.splice(asyncScopes.lastIndexOf(made), 1);
  }
  const survivors = collectTensors(result);
  for (const t of made) if (!survivors.has(t) && !kept.has(t)) t.dispose();
  return result;
}

/** Disposes every tensor in a value (tensor, array, object tree). */
export function dispose(value: unknown): void {
  for (const t of collectTensors(value)) t.dispose();
}
