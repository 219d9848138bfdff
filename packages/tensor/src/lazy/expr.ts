/** @file Pending elementwise expressions (lazy fusion): the ENode DAG over leaf storages and uniform scalars. */
/*
 * Rules (COMPILE-NOTES §6.2), on by default (METAGRAD_FUSION=0 or setFusion(…, false) turns them off):
 * - f32 unary, arithmetic binary (broadcasting), scalar forms, axpby and reluGrad return a tensor whose Storage holds
 *   a Pending instead of a buffer; validation (and its errors) happen first, exactly as eagerly. Compare, where,
 *   cast, i32/u32 and empty outputs stay eager.
 * - A pending operand of the same shape is inlined (its node joins the new DAG); a view with another shape is
 *   realised first. Leaves are realised storages; scalars go to the uniform block (pipelines shared across values).
 * - Memory: a pending tensor counts its logical bytes in bytesInUse from creation, as the eager output would, so
 *   bytesInUse, its peak and liveTensors equal eager's at every point. A leaf disposed before realisation leaves
 *   bytesInUse at once (as eagerly) but its buffer stays out of the pool until the expression is realised or
 *   dropped (it shows in bytesAllocated meanwhile). A pending value disposed unrealised is never computed.
 * - Realisation (realize.ts): the first `Storage.buffer` access. Inner values of the root's size that still have a
 *   live handle are written as extra outputs of the same kernel; smaller ones (broadcast inputs) stay pending and
 *   realise on their own later (recomputed from the leaves).
 * - Cuts: distinct leaves + 1 output > maxStorageBuffersPerShaderStage, more than MAX_FUSED_OPS op nodes, or an
 *   output with more than MAX_ELEMENTWISE_RANK non-1 dims: the pending operands are realised first.
 * - Versions: an in-place write (Storage.bumpVersion, via Tensor.bufferForInPlaceWrite) realises every pending
 *   expression that reads the storage before the write is recorded.
 */
import { fusedArity, MAX_ELEMENTWISE_RANK, type FusedOp, type MatmulEpilogue } from '@metagrad/kernels-wgsl';
import { Storage, Tensor, sizeOf, BYTES_PER_ELEMENT, type PendingValue, type Shape } from '../tensor';
import { realizePending } from './realize';

/** A realised storage read through a handle of shape `shape` (broadcast to the consumer's shape). */
export interface LeafNode {
  readonly k: 'leaf';
  readonly storage: Storage;
  readonly shape: Shape;
}
/** A host scalar: its f32 bits go to the uniform block, never into the WGSL (pipelines shared across values). */
export interface ScalarNode {
  readonly k: 'scalar';
  readonly bits: number;
}
/** An epilogue for a producer's dispatch: the program, its leaf buffers (bound after the producer's inputs), its words. */
export interface ProducerEpilogue {
  readonly epilogue: MatmulEpilogue;
  readonly leaves: readonly GPUBuffer[];
  readonly words: readonly number[];
}

/**
 * A pending matmul (lazy fusion's epilogue producer, COMPILE-NOTES §6.2 item 6): the product is computed when
 * something reads it, and an elementwise expression over it of the same shape is applied in the matmul kernel's
 * store instead of a kernel of its own. `leaves` are the operand storages the kernel binds (packed copies where the
 * variant needed packing, made at the call like eagerly).
 */
export interface MatmulNode {
  readonly k: 'mm';
  readonly shape: Shape;
  readonly leaves: readonly Storage[];
  /**
   * Records the matmul's dispatch(es): `outs[0]` is C, the epilogue's extra outputs follow; without an epilogue,
   * exactly the eager op's dispatch.
   */
  readonly record: (outs: readonly GPUBuffer[], epi: ProducerEpilogue | null) => void;
  /** The storage the product was returned in (written as an extra output while that handle is alive). */
  owner: Storage | null;
}

export interface OpNode {
  readonly k: 'op';
  readonly op: FusedOp;
  readonly args: readonly ENode[];
  readonly shape: Shape;
  /** Distinct storages this node's realisation reads: leaf storages and a pending matmul's operands (retained). */
  readonly leaves: readonly Storage[];
  /** Distinct leaf storages read elementwise (each a binding of the fused kernel). */
  readonly direct: readonly Storage[];
  /** Distinct pending matmuls under this node (at most one, of this node's shape, unless the build is cut). */
  readonly mms: readonly MatmulNode[];
  /** Upper bound on distinct op nodes under (and including) this one (shared nodes counted per use). */
  readonly ops: number;
  /** The storage this node's value was returned in (written as an extra output while that handle is alive). */
  owner: Storage | null;
}
export type ENode = LeafNode | ScalarNode | OpNode | MatmulNode;

/** Cut: more op nodes than this realise the inputs first (kernel size stays bounded; the 100-add chain fits). */
export const MAX_FUSED_OPS = 128;

const f32Bits = (() => {
  const view = new DataView(new ArrayBuffer(4));
  return (v: number): number => {
    view.setFloat32(0, v, true);
    return view.getUint32(0, true);
  };
})();

/** One pending value: its expression, and the leaf storages it retains until it is realised or dropped. */
export class Pending implements PendingValue {
  private live = true;
  constructor(
    readonly root: OpNode | MatmulNode,
    readonly storage: Storage,
  ) {
    for (const s of root.leaves) {
      s.exprRetain();
      (s.readers ??= new Set()).add(this);
    }
  }

  realize(): void {
    if (this.live) realizePending(this);
  }

  /** Lets go of the leaves (after realisation, or when the value is dropped unrealised). */
  drop(): void {
    if (!this.live) return;
    this.live = false;
    for (const s of this.root.leaves) {
      s.readers?.delete(this);
      s.exprRelease();
    }
  }
}

/** An operand of a lazy op: a tensor, a host scalar, or a node built for the same call (axpby's products). */
export type Operand = Tensor | number | OpNode;

const sameShape = (a: Shape, b: Shape) => a.length === b.length && a.every((d, i) => d === b[i]);
function dropLeadingOnes(s: Shape): Shape {
  let i = 0;
  while (i < s.length && s[i] === 1) i++;
  return s.slice(i);
}

function pendingOf(s: Storage): Pending | null {
  return s.pending instanceof Pending ? s.pending : null;
}

function toNode(x: Operand): ENode {
  if (typeof x === 'number') return { k: 'scalar', bits: f32Bits(x) };
  if (!(x instanceof Tensor)) return x;
  x.assertAlive();
  x.assertVersion();
  const p = pendingOf(x.storage);
  // A view that only adds or drops leading 1-dims broadcasts like the expression itself (right-aligned), so the
  // expression is inlined as is (a reduction's gradient [n] viewed as [1, n] and expanded, say).
  if (p && sameShape(dropLeadingOnes(p.root.shape), dropLeadingOnes(x.shape))) return p.root;
  // A view with another shape of a pending value is realised: its indexing is not the expression's.
  if (p) void x.storage.buffer;
  return { k: 'leaf', storage: x.storage, shape: x.shape };
}

function union<T>(lists: readonly (readonly T[])[]): T[] {
  const out: T[] = [];
  for (const ls of lists) for (const s of ls) if (!out.includes(s)) out.push(s);
  return out;
}
const unionLeaves = (args: readonly ENode[]) => union(args.map((a) => (a.k === 'leaf' ? [a.storage] : a.k === 'op' || a.k === 'mm' ? a.leaves : [])));
const unionDirect = (args: readonly ENode[]) => union(args.map((a) => (a.k === 'leaf' ? [a.storage] : a.k === 'op' ? a.direct : [])));
const unionMms = (args: readonly ENode[]) => union(args.map((a) => (a.k === 'mm' ? [a] : a.k === 'op' ? a.mms : [])));

/**
 * The epilogue rule (jax-js): an expression holds at most one pending matmul, of the expression's own shape (its
 * other leaves may broadcast into the product, never the product into a larger output).
 */
const mmsFit = (mms: readonly MatmulNode[], shape: Shape) => mms.length === 0 || (mms.length === 1 && sameShape(mms[0].shape, shape));
/** Storage bindings of a fused kernel for these parts: the elementwise leaves, a matmul's A and B, one output. */
const bindingsOf = (direct: readonly Storage[], mms: readonly MatmulNode[]) => direct.length + (mms.length ? 2 : 0) + 1;

/** Builds an op node, realising pending tensor operands first when the node would break a cut. */
export function opNode(op: FusedOp, operands: readonly Operand[], shape: Shape, maxBuffers: number): OpNode {
  if (operands.length !== fusedArity(op)) throw new Error(`lazy ${op}: ${operands.length} operands`);
  // A pending operand smaller than the output (a bias broadcast over rows) is realised first, computed once: inlined,
  // it would be recomputed for every output element, and a value updated step after step (b_k = b_{k−1} − αg_k)
  // would grow into a longer expression, and a new kernel, at every step (measured: 288 distinct kernels in a
  // 100-step MAML trace, 154 with this rule; results then equal eager's bit for bit in test/models/memorise).
  const size = sizeOf(shape);
  for (const x of operands) if (x instanceof Tensor && x.size < size && x.storage.pending) void x.storage.buffer;
  let args = operands.map(toNode);
  if (!mmsFit(unionMms(args), shape)) {
    // Epilogue rule: keep the first operand's matmul that fits, realise the other operands holding one.
    let kept: MatmulNode | null = null;
    operands.forEach((x, i) => {
      const m = unionMms([args[i]]);
      if (!m.length || (m.length === 1 && m[0] === kept)) return;
      if (!kept && mmsFit(m, shape)) kept = m[0];
      else if (x instanceof Tensor) void x.storage.buffer;
    });
    args = operands.map(toNode);
  }
  const ops = () => 1 + args.reduce((n, a) => n + (a.k === 'op' ? a.ops : 0), 0);
  const tooBig = () => bindingsOf(unionDirect(args), unionMms(args)) > maxBuffers || ops() > MAX_FUSED_OPS;
  if (tooBig() || shape.filter((d) => d !== 1).length > MAX_ELEMENTWISE_RANK) {
    // Cut: the pending operands become realised leaves (one kernel each), then this node starts afresh.
    for (const x of operands) if (x instanceof Tensor && x.storage.pending) void x.storage.buffer;
    args = operands.map(toNode);
  }
  return {
    k: 'op',
    op,
    args,
    shape: [...shape],
    leaves: unionLeaves(args),
    direct: unionDirect(args),
    mms: unionMms(args),
    ops: ops(),
    owner: null,
  };
}

/** Whether a node built from already-built nodes stays within the cuts (else realise its tensor operands). */
export function fits(node: OpNode, maxBuffers: number): boolean {
  return bindingsOf(node.direct, node.mms) <= maxBuffers && node.ops <= MAX_FUSED_OPS && mmsFit(node.mms, node.shape);
}

/** Wraps a node in a new tensor whose storage holds it pending (counted in bytesInUse as if realised). */
export function pendingTensor(node: OpNode, device: Storage['device']): Tensor {
  const out = lazyOutput(device, node.shape);
  out.settle(node);
  return out.tensor;
}

/**
 * A pending output counted in bytesInUse from now (as the eager op's `empty` would be), whose expression is given
 * later with `settle` (a matmul packs its operands in between, as eagerly, so the memory figures match). Disposed
 * before it is settled, it is simply freed.
 */
export function lazyOutput(device: Storage['device'], shape: Shape): { tensor: Tensor; settle(node: OpNode | MatmulNode): void } {
  let pending: Pending | null = null;
  const storage = Storage.lazy(device, sizeOf(shape) * BYTES_PER_ELEMENT, {
    realize: () => {
      if (!pending) throw new Error('lazy fusion: a pending output was read before its expression was set');
      pending.realize();
    },
    drop: () => pending?.drop(),
  });
  const tensor = new Tensor(storage, [...shape], 'f32');
  return {
    tensor,
    settle(node) {
      pending = new Pending(node, storage);
      storage.pending = pending;
      node.owner = storage;
    },
  };
}
