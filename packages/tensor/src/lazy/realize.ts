/** @file Realising a pending expression: one fused kernel (renderKernel via fusedKernel), extra outputs for live inner values. */
import { fusedKernel, linearDispatch, FUSED_CHUNK, MAX_ELEMENTWISE_RANK, type FusedLeafMode, type FusedOp, type FusedRef } from '@metagrad/kernels-wgsl';
import { sizeOf, type Storage } from '../tensor';
import { planElementwise } from '../ops/elementwise';
import type { ENode, LeafNode, OpNode, Pending } from './expr';

/** Leaf reads are distinct per (storage, handle shape); the key names both. */
const storageIds = new WeakMap<Storage, number>();
let nextStorageId = 1;
function storageId(s: Storage): number {
  let id = storageIds.get(s);
  if (id === undefined) storageIds.set(s, (id = nextStorageId++));
  return id;
}
const readKey = (l: LeafNode) => `${storageId(l.storage)}:${l.shape.join('x')}`;

/**
 * Computes `p` (and every inner value of the same size whose own handle is still alive, as extra outputs of the
 * same kernel) in one dispatch, then hands each its buffer and lets go of the leaves.
 */
export function realizePending(p: Pending): void {
  const root = p.root;
  const device = p.storage.device;
  const n = sizeOf(root.shape);
  const maxBuffers = device.limits.maxStorageBuffersPerShaderStage || 8;

  // Pass 1: distinct leaf reads and bindings, in first-visit post order.
  const reads: LeafNode[] = [];
  const readIndex = new Map<string, number>();
  const bindings: Storage[] = [];
  const seen = new Set<ENode>();
  const order: ENode[] = [];
  const visit = (node: ENode): void => {
    if (seen.has(node)) return;
    seen.add(node);
    if (node.k === 'op') node.args.forEach(visit);
    else if (node.k === 'leaf' && !readIndex.has(readKey(node))) {
      readIndex.set(readKey(node), reads.length);
      reads.push(node);
      if (!bindings.includes(node.storage)) bindings.push(node.storage);
    }
    order.push(node);
  };
  visit(root);

  // Leaf layouts from the same broadcast folding the eager ops use.
  const plan = planElementwise(root.shape, reads.map((r) => r.shape));
  const contiguous = (st: number[]) => st.every((s, d) => s === plan.shape.slice(d + 1).reduce((a, b) => a * b, 1) || plan.shape[d] === 1);
  const modes: FusedLeafMode[] = plan.strides.map((st) => (st.every((s) => s === 0) ? 'scalar' : contiguous(st) ? 'full' : 'strided'));
  const anyStrided = modes.includes('strided');

  // Pass 2: SSA steps, common subexpressions merged by structure.
  const refOf = new Map<ENode, FusedRef>();
  const byKey = new Map<string, FusedRef>();
  const steps: { op: FusedOp; args: FusedRef[] }[] = [];
  const stepNode: OpNode[] = [];
  const scalarBits: number[] = [];
  for (const node of order) {
    if (node.k === 'leaf') refOf.set(node, `l${readIndex.get(readKey(node))!}`);
    else if (node.k === 'scalar') {
      refOf.set(node, `s${scalarBits.length}`);
      scalarBits.push(node.bits);
    } else {
      const args = node.args.map((a) => refOf.get(a)!);
      const key = `${node.op}(${args.join(',')})`;
      let ref = byKey.get(key);
      if (!ref) {
        ref = `t${steps.length}`;
        byKey.set(key, ref);
        steps.push({ op: node.op, args });
        stepNode.push(node);
      }
      refOf.set(node, ref);
    }
  }

  // Outputs: the root, then inner values of the same size that a live handle (user or autograd) still holds.
  const rootStep = Number(refOf.get(root)!.slice(1));
  const outputs = [rootStep];
  const outStorages: Storage[] = [p.storage];
  for (let j = 0; j < steps.length; j++) {
    if (bindings.length + outputs.length >= maxBuffers) break;
    const owner = stepNode[j].owner;
    const op = owner?.pending as Pending | null | undefined;
    if (!owner || owner === p.storage || owner.refCount === 0 || !op || op.root !== stepNode[j]) continue;
    if (sizeOf(stepNode[j].shape) !== n || outStorages.includes(owner)) continue;
    outputs.push(j);
    outStorages.push(owner);
  }

  const rank = anyStrided ? plan.shape.length : 0;
  if (rank > MAX_ELEMENTWISE_RANK) throw new Error(`lazy fusion: folded rank ${rank} exceeds ${MAX_ELEMENTWISE_RANK} (the cut should have prevented this)`);
  const spec = fusedKernel({
    bindings: bindings.length,
    reads: reads.map((r, k) => ({ binding: bindings.indexOf(r.storage), mode: modes[k] })),
    scalars: scalarBits.length,
    rank,
    steps,
    outputs,
  });
  const nvec = Math.ceil(n / 4);
  const words: number[] = [n, rank === 0 ? nvec : 0, 0, 0];
  if (anyStrided) {
    for (let d = 0; d < MAX_ELEMENTWISE_RANK; d++) words.push(d < rank ? plan.shape[d] : 1);
    plan.strides.forEach((st, k) => {
      if (modes[k] === 'strided') for (let d = 0; d < MAX_ELEMENTWISE_RANK; d++) words.push(d < rank ? st[d] : 0);
    });
  }
  words.push(...scalarBits);
  while (words.length % 4) words.push(0);

  const inBuffers = bindings.map((s) => s.buffer);
  const outBuffers = outStorages.map((s) => device.pool.acquire(Math.max(s.byteSize, 4)));
  try {
    device.dispatch(spec, [...inBuffers, ...outBuffers], new Uint32Array(words), linearDispatch(rank === 0 ? nvec : n, FUSED_CHUNK));
  } catch (e) {
    for (const b of outBuffers) device.pool.release(b);
    throw e;
  }
  outStorages.forEach((s, i) => {
    const own = s.pending as Pending;
    s.attachBuffer(outBuffers[i]);
    own.drop();
  });
}
