/** @file Pending elementwise expressions (lazy fusion): the ENode DAG over leaf storages and uniform scalars. */
/*
 * Rules of this first slice (COMPILE-NOTES §6.2), on only under METAGRAD_FUSION=1 / setFusion:
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
import { fusedArity, MAX_ELEMENTWISE_RANK, type FusedOp } from '@metagrad/kernels-wgsl';
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
export interface OpNode {
  readonly k: 'op';
  readonly op: FusedOp;
  readonly args: readonly ENode[];
  readonly shape: Shape;
  /** Distinct leaf storages under this node. */
  readonly leaves: readonly Storage[];
  /** Upper bound on distinct op nodes under (and including) this one (shared nodes counted per use). */
  readonly ops: number;
  /** The storage this node's value was returned in (written as an extra output while that handle is alive). */
  owner: Storage | null;
}
export type ENode = LeafNode | ScalarNode | OpNode;

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
    readonly root: OpNode,
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

function pendingOf(s: Storage): Pending | null {
  return s.pending instanceof Pending ? s.pending : null;
}

function toNode(x: Operand): ENode {
  if (typeof x === 'number') return { k: 'scalar', bits: f32Bits(x) };
  if (!(x instanceof Tensor)) return x;
  x.assertAlive();
  x.assertVersion();
  const p = pendingOf(x.storage);
  if (p && sameShape(p.root.shape, x.shape)) return p.root;
  // A view with another shape of a pending value is realised: its indexing is not the expression's.
  if (p) void x.storage.buffer;
  return { k: 'leaf', storage: x.storage, shape: x.shape };
}

function unionLeaves(args: readonly ENode[]): Storage[] {
  const out: Storage[] = [];
  for (const a of args) {
    const ls = a.k === 'leaf' ? [a.storage] : a.k === 'op' ? a.leaves : [];
    for (const s of ls) if (!out.includes(s)) out.push(s);
  }
  return out;
}

/** Builds an op node, realising pending tensor operands first when the node would break a cut. */
export function opNode(op: FusedOp, operands: readonly Operand[], shape: Shape, maxBuffers: number): OpNode {
  if (operands.length !== fusedArity(op)) throw new Error(`lazy ${op}: ${operands.length} operands`);
  let args = operands.map(toNode);
  const ops = () => 1 + args.reduce((n, a) => n + (a.k === 'op' ? a.ops : 0), 0);
  const tooBig = () => unionLeaves(args).length + 1 > maxBuffers || ops() > MAX_FUSED_OPS;
  if (tooBig() || shape.filter((d) => d !== 1).length > MAX_ELEMENTWISE_RANK) {
    // Cut: the pending operands become realised leaves (one kernel each), then this node starts afresh.
    for (const x of operands) if (x instanceof Tensor && x.storage.pending) void x.storage.buffer;
    args = operands.map(toNode);
  }
  return { k: 'op', op, args, shape: [...shape], leaves: unionLeaves(args), ops: ops(), owner: null };
}

/** Whether a node built from already-built nodes stays within the cuts (else realise its tensor operands). */
export function fits(node: OpNode, maxBuffers: number): boolean {
  return node.leaves.length + 1 <= maxBuffers && node.ops <= MAX_FUSED_OPS;
}

/** Wraps a node in a new tensor whose storage holds it pending (counted in bytesInUse as if realised). */
export function pendingTensor(node: OpNode, device: Storage['device']): Tensor {
  let pending: Pending | null = null;
  const storage = Storage.lazy(device, sizeOf(node.shape) * BYTES_PER_ELEMENT, {
    realize: () => pending!.realize(),
    drop: () => pending!.drop(),
  });
  pending = new Pending(node, storage);
  storage.pending = pending;
  node.owner = storage;
  return new Tensor(storage, node.shape, 'f32');
}
