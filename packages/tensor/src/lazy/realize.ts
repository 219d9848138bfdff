/** @file Realising a pending expression: one fused kernel (renderKernel via fusedKernel), extra outputs for live inner values. */
import {
  fusedKernel,
  linearDispatch,
  FUSED_CHUNK,
  MAX_ELEMENTWISE_RANK,
  type FusedLeafMode,
  type FusedOp,
  type FusedProgram,
  type FusedRef,
} from '@metagrad/kernels-wgsl';
import { sizeOf, type Shape, type Storage } from '../tensor';
import { planElementwise } from '../ops/elementwise';
import type { ENode, LeafNode, MatmulNode, OpNode, Pending } from './expr';

/** Leaf reads are distinct per (storage, handle shape); the key names both. */
const storageIds = new WeakMap<Storage, number>();
let nextStorageId = 1;
function storageId(s: Storage): number {
  let id = storageIds.get(s);
  if (id === undefined) storageIds.set(s, (id = nextStorageId++));
  return id;
}
const readKey = (l: LeafNode) => `${storageId(l.storage)}:${l.shape.join('x')}`;

/** An expression DAG lowered to a fused SSA program: leaf reads, their bindings and layouts, steps, scalars. */
export interface Lowered {
  readonly root: OpNode;
  /** Leaf reads, and the pending matmul whose product the program reads (mode 'acc', no binding) if any. */
  readonly reads: readonly (LeafNode | MatmulNode)[];
  /** The pending matmul to compute with this program as its epilogue, or null. */
  readonly mm: MatmulNode | null;
  readonly modes: readonly FusedLeafMode[];
  /** Distinct leaf storages, in binding order (`in<b>`). */
  readonly bindings: readonly Storage[];
  readonly steps: readonly { op: FusedOp; args: FusedRef[] }[];
  /** The op node each step came from (its `owner` decides extra outputs). */
  readonly stepNode: readonly OpNode[];
  /** Every op node each step stands for (structurally equal nodes merged into it; any live owner is an output). */
  readonly stepNodes: readonly (readonly OpNode[])[];
  readonly scalarBits: readonly number[];
  readonly rootStep: number;
  /** Folded rank when a read is strided, else 0. */
  readonly rank: number;
  /** The folded shape and per-read strides (strided reads use them). */
  readonly shape: Shape;
  readonly strides: readonly (readonly number[])[];
}

/**
 * A pending matmul already realised into a storage that is still alive reads as a leaf (no recomputation);
 * otherwise it is the expression's epilogue producer (at most one per expression, of its shape: opNode's rule).
 */
function realisedProduct(m: MatmulNode): LeafNode | null {
  const o = m.owner;
  return o && o.refCount > 0 && o.pending === null ? { k: 'leaf', storage: o, shape: m.shape } : null;
}

/** Lowers `root` (first-visit post order, common subexpressions merged by structure). */
export function lower(root: OpNode): Lowered {
  // Pass 1: distinct leaf reads and bindings.
  const reads: (LeafNode | MatmulNode)[] = [];
  const readIndex = new Map<string, number>();
  const bindings: Storage[] = [];
  const seen = new Set<ENode>();
  const order: ENode[] = [];
  const asLeaf = new Map<MatmulNode, LeafNode>();
  let mm: MatmulNode | null = null;
  const visit = (node: ENode): void => {
    if (seen.has(node)) return;
    seen.add(node);
    if (node.k === 'op') node.args.forEach(visit);
    else if (node.k === 'mm') {
      const leaf = realisedProduct(node);
      if (leaf) {
        asLeaf.set(node, leaf);
        node = leaf;
      } else {
        if (mm || !sameShape(node.shape, root.shape))
          throw new Error('lazy fusion: a second or broadcast pending matmul in one expression (the build should have cut it)');
        mm = node;
        readIndex.set('mm', reads.length);
        reads.push(node);
      }
    }
    if (node.k === 'leaf' && !readIndex.has(readKey(node))) {
      readIndex.set(readKey(node), reads.length);
      reads.push(node);
      if (!bindings.includes(node.storage)) bindings.push(node.storage);
    }
    order.push(node);
  };
  visit(root);

  // Leaf layouts from the same broadcast folding the eager ops use (the product is read at its own element).
  const plan = planElementwise(
    root.shape,
    reads.map((r) => r.shape),
  );
  const contiguous = (st: number[]) => st.every((s, d) => s === plan.shape.slice(d + 1).reduce((a, b) => a * b, 1) || plan.shape[d] === 1);
  const modes: FusedLeafMode[] = plan.strides.map((st, k) =>
    reads[k].k === 'mm' ? 'acc' : st.every((s) => s === 0) ? 'scalar' : contiguous(st) ? 'full' : 'strided',
  );
  const rank = modes.includes('strided') ? plan.shape.length : 0;
  if (rank > MAX_ELEMENTWISE_RANK) throw new Error(`lazy fusion: folded rank ${rank} exceeds ${MAX_ELEMENTWISE_RANK} (the cut should have prevented this)`);

  // Pass 2: SSA steps, common subexpressions merged by structure.
  const refOf = new Map<ENode, FusedRef>();
  const byKey = new Map<string, FusedRef>();
  const steps: { op: FusedOp; args: FusedRef[] }[] = [];
  const stepNode: OpNode[] = [];
  const stepNodes: OpNode[][] = [];
  const scalarBits: number[] = [];
  for (const node of order) {
    if (node.k === 'mm') refOf.set(node, `l${readIndex.get('mm')!}`);
    else if (node.k === 'leaf') refOf.set(node, `l${readIndex.get(readKey(node))!}`);
    else if (node.k === 'scalar') {
      refOf.set(node, `s${scalarBits.length}`);
      scalarBits.push(node.bits);
    } else {
      const args = node.args.map((a) => refOf.get(a.k === 'mm' ? (asLeaf.get(a) ?? a) : a)!);
      const key = `${node.op}(${args.join(',')})`;
      let ref = byKey.get(key);
      if (!ref) {
        ref = `t${steps.length}`;
        byKey.set(key, ref);
        steps.push({ op: node.op, args });
        stepNode.push(node);
        stepNodes.push([node]);
      } else {
        stepNodes[Number(ref.slice(1))].push(node);
      }
      refOf.set(node, ref);
    }
  }
  const rootStep = Number(refOf.get(root)!.slice(1));
  return {
    root,
    reads,
    mm,
    modes,
    bindings,
    steps,
    stepNode,
    stepNodes,
    scalarBits,
    rootStep,
    rank,
    shape: plan.shape,
    strides: plan.strides,
  };
}

const sameShape = (a: Shape, b: Shape) => a.length === b.length && a.every((d, i) => d === b[i]);

/** The fused program of a lowered expression writing `outputs` (step indices). */
export function programOf(l: Lowered, outputs: readonly number[]): FusedProgram {
  return {
    bindings: l.bindings.length,
    reads: l.reads.map((r, k) => ({ binding: r.k === 'mm' ? -1 : l.bindings.indexOf(r.storage), mode: l.modes[k] })),
    scalars: l.scalarBits.length,
    rank: l.rank,
    steps: l.steps,
    outputs,
  };
}

/** The matmul's storage, when a live handle beyond the `handed` ones still holds it pending (the raw product). */
function liveProduct(m: MatmulNode, handed: ReadonlyMap<Storage, number>): Storage | null {
  const o = m.owner;
  const op = o?.pending as Pending | null | undefined;
  return o && op && op.root === m && o.refCount - (handed.get(o) ?? 0) > 0 ? o : null;
}

/**
 * Inner values to write as extra outputs, in step order: a node of the root's size whose own storage is still
 * pending on it and has a live handle beyond the `handed` ones (the handles the caller passes in and so does not
 * count: the root's own for a realisation, the reduction's operands for a prologue). At most `room` of them.
 */
export function extraOutputs(
  l: Lowered,
  handed: ReadonlyMap<Storage, number>,
  room: number,
  skip: readonly Storage[] = [],
): { steps: number[]; storages: Storage[] } {
  const n = sizeOf(l.root.shape);
  const steps: number[] = [];
  const storages: Storage[] = [];
  for (let j = 0; j < l.steps.length && steps.length < room; j++) {
    for (const node of l.stepNodes[j]) {
      const owner = node.owner;
      const op = owner?.pending as Pending | null | undefined;
      if (!owner || !op || op.root !== node || owner.refCount - (handed.get(owner) ?? 0) <= 0) continue;
      if (sizeOf(node.shape) !== n || storages.includes(owner) || skip.includes(owner) || steps.length >= room) continue;
      steps.push(j);
      storages.push(owner);
    }
  }
  return { steps, storages };
}

/** The program's own uniform words: the folded shape and strided reads' strides (when rank > 0), then the scalars. */
export function programWords(l: Lowered): number[] {
  const words: number[] = [];
  if (l.rank > 0) {
    for (let d = 0; d < MAX_ELEMENTWISE_RANK; d++) words.push(d < l.rank ? l.shape[d] : 1);
    l.strides.forEach((st, k) => {
      if (l.modes[k] === 'strided') for (let d = 0; d < MAX_ELEMENTWISE_RANK; d++) words.push(d < l.rank ? st[d] : 0);
    });
  }
  words.push(...l.scalarBits);
  while (words.length % 4) words.push(0);
  return words;
}

/** Acquires a buffer for each storage to be written (returned to the pool if `record` throws), then attaches them. */
export function writeOutputs(storages: readonly Storage[], record: (buffers: GPUBuffer[]) => void): void {
  const device = storages[0]?.device;
  const buffers = storages.map((s) => device.pool.acquire(Math.max(s.byteSize, 4)));
  try {
    record(buffers);
  } catch (e) {
    for (const b of buffers) device.pool.release(b);
    throw e;
  }
  storages.forEach((s, i) => {
    const own = s.pending as Pending;
    s.attachBuffer(buffers[i]);
    own.drop();
  });
}

/**
 * Computes `p` (and every inner value of the same size whose own handle is still alive, as extra outputs of the
 * same kernel) in one dispatch, then hands each its buffer and lets go of the leaves.
 */
export function realizePending(p: Pending): void {
  const device = p.storage.device;
  const n = sizeOf(p.root.shape);
  const maxBuffers = device.limits.maxStorageBuffersPerShaderStage || 8;
  const root = p.root;
  // A matmul read as is: the eager op's dispatch.
  if (root.k === 'mm') return writeOutputs([p.storage], (out) => root.record(out, null));
  const l = lower(root);
  if (l.mm) return realizeEpilogue(p, l, l.mm, maxBuffers);

  // Outputs: the root, then inner values of the same size that a live handle (user or autograd) still holds.
  const extra = extraOutputs(l, new Map(), maxBuffers - l.bindings.length - 1, [p.storage]);
  const outputs = [l.rootStep, ...extra.steps];
  const spec = fusedKernel(programOf(l, outputs));
  const nvec = Math.ceil(n / 4);
  const words = new Uint32Array([n, l.rank === 0 ? nvec : 0, 0, 0, ...programWords(l)]);
  const inBuffers = l.bindings.map((s) => s.buffer);
  writeOutputs([p.storage, ...extra.storages], (out) =>
    device.dispatch(spec, [...inBuffers, ...out], words, linearDispatch(l.rank === 0 ? nvec : n, FUSED_CHUNK)),
  );
}

/**
 * Computes `p` as the epilogue of its pending matmul `mm`: one matmul dispatch whose store applies the program. The
 * raw product (when its own handle is alive) and live inner values of the same size are extra outputs.
 */
function realizeEpilogue(p: Pending, l: Lowered, mm: MatmulNode, maxBuffers: number): void {
  const raw = liveProduct(mm, new Map());
  let room = maxBuffers - l.bindings.length - 2 - 1;
  const rawOut = raw && room > 0 ? raw : null;
  if (rawOut) room--;
  const extra = extraOutputs(l, new Map(), room, [p.storage]);
  // Strided leaves over a folded [batch·M, N] are addressed from the element's row and column (no divisions).
  const N = mm.shape[mm.shape.length - 1];
  const rowCol = l.rank === 2 && l.shape[1] === N;
  const epilogue = { program: programOf(l, [l.rootStep, ...extra.steps]), raw: rawOut !== null, rowCol };
  const words = programWords(l);
  const leaves = l.bindings.map((s) => s.buffer);
  writeOutputs([p.storage, ...extra.storages, ...(rawOut ? [rawOut] : [])], (out) => mm.record(out, { epilogue, leaves, words }));
}
