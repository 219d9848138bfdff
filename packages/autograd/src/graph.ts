/** @file The tape's nodes: reference-counted leaf and op records, their saved tensors, and live-graph statistics. */
import { InPlaceModificationError, keep, Tensor, type Device, type GradNodeLike, type Shape, type Storage, type VersionPin } from '@metagrad/tensor';
import type { Prim, PrimAttrs } from './prims';

/** Backward was asked to run through a node whose saved tensors were already freed by an earlier backward. */
export class GraphFreedError extends Error {
  override name = 'GraphFreedError';
}

/** Live nodes and the storages that saved tensors keep alive (counted once per storage). */
const liveNodes = new Set<Node>();
const savedStorages = new Map<Storage, number>();

export function tapeStats(device?: Device): { tapeNodes: number; savedBytes: number } {
  let savedBytes = 0;
  for (const s of savedStorages.keys()) if (!device || s.device === device) savedBytes += s.byteSize;
  let tapeNodes = liveNodes.size;
  if (device) {
    tapeNodes = 0;
    for (const n of liveNodes) if (n.device === device) tapeNodes++;
  }
  return { tapeNodes, savedBytes };
}

let nextNodeId = 1;

/**
 * Freeing a node releases its inputs, which may free them in turn: a queue instead of recursion keeps
 * deep graphs (long unrolled inner loops) from overflowing the stack.
 */
const freeQueue: Node[] = [];
let draining = false;

function scheduleFree(n: Node): void {
  freeQueue.push(n);
  if (draining) return;
  draining = true;
  try {
    for (let next = freeQueue.pop(); next; next = freeQueue.pop()) next.freeResources();
  } finally {
    draining = false;
  }
}

/** Common part of leaf and op nodes: a reference count held by tensor handles, consumers and saved aliases. */
export abstract class Node implements GradNodeLike {
  abstract readonly kind: string;
  readonly id = nextNodeId++;
  private refs = 0;

  constructor(readonly device: Device) {
    liveNodes.add(this);
  }

  get refCount(): number {
    return this.refs;
  }

  retain(): void {
    this.refs++;
  }

  release(): void {
    if (this.refs <= 0) throw new Error(`autograd node #${this.id} (${this.kind}) released more often than retained`);
    if (--this.refs === 0) {
      liveNodes.delete(this);
      scheduleFree(this);
    }
  }

  /** Called once when the last reference goes (internal). */
  abstract freeResources(): void;
}

/** The node of a tensor the user asked gradients for: backward() accumulates into its `.grad`. */
export class LeafNode extends Node {
  readonly kind = 'leaf';

  constructor(readonly tensor: Tensor) {
    super(tensor.device);
  }

  freeResources(): void {
    /* the leaf tensor owns its storage and grad */
  }
}

/** A tensor handle on a saved storage without a node: nodes are attached only when a backward unpacks it. */
interface SavedTensor {
  alias: Tensor;
  /** The saved tensor's own node (retained here), or null when it is this node's output or needs no grad. */
  node: Node | null;
  isOutput: boolean;
  requiresGrad: boolean;
  /** Pins the alias (and the handles unpack makes) to the storage version at save time. */
  pin: VersionPin;
}

function aliasWithoutNode(t: Tensor): Tensor {
  t.assertAlive('save');
  t.assertVersion();
  return keep(new Tensor(t.storage.retain(), t.shape, t.dtype));
}

/** A handle sharing `t`'s storage and node: how the engine hands out a tensor it does not own. */
export function share(t: Tensor): Tensor {
  t.assertAlive('share');
  t.assertVersion();
  const h = new Tensor(t.storage.retain(), t.shape, t.dtype);
  h.requiresGrad = t.requiresGrad;
  h.node = t.node;
  return h;
}

/** The record of one differentiable op: its input nodes, what its VJP needs, and the op's attributes. */
export class OpNode<P extends Prim = Prim> extends Node {
  private saved: SavedTensor[] = [];
  private savedFreed = false;
  /** Whether any saved tensor exists at all, so a freed node with nothing saved can still run again (as torch). */
  private hadSaved = false;

  constructor(
    readonly kind: P,
    /** Input nodes (retained); null where the input needs no gradient. */
    readonly inputs: readonly (Node | null)[],
    readonly inputShapes: readonly Shape[],
    readonly attrs: PrimAttrs[P],
    readonly outputShape: Shape,
    device: Device,
  ) {
    super(device);
    for (const n of inputs) n?.retain();
  }

  /**
   * Stores aliases of `tensors`; the op's own output is saved without a node to avoid a reference cycle. Each alias
   * is pinned to its storage's current version: a VJP that reads it after an in-place write (an optimiser step)
   * throws InPlaceModificationError, as torch's version counters do; one that does not read it (the gradient of
   * another input) still runs. The check is a host-side integer compare.
   */
  save(tensors: readonly Tensor[], output: Tensor): void {
    this.hadSaved = tensors.length > 0;
    tensors.forEach((t, k) => {
      const isOutput = t === output;
      const node = isOutput || !t.requiresGrad ? null : (t.node as Node | null);
      const alias = aliasWithoutNode(t);
      node?.retain();
      const { id, name } = t; // the message is built only if the check fails
      const source = () => (isOutput ? "the op's own output" : `tensor #${id}${name ? ` '${name}'` : ''}`);
      const pin: VersionPin = {
        version: t.storage.version,
        stale: (now) => this.modifiedError(k, source(), alias, pin.version, now),
      };
      alias.pinVersion(pin);
      savedStorages.set(alias.storage, (savedStorages.get(alias.storage) ?? 0) + 1);
      this.saved.push({ alias, node, isOutput, requiresGrad: isOutput || t.requiresGrad, pin });
    });
  }

  /** The op as errors name it: a customVjp op by its own name. */
  get label(): string {
    const name = (this.attrs as { name?: unknown }).name;
    return this.kind === 'custom' && typeof name === 'string' ? `customVjp '${name}'` : `'${this.kind}'`;
  }

  private modifiedError(k: number, source: string, alias: Tensor, saved: number, now: number): InPlaceModificationError {
    return new InPlaceModificationError(
      `backward through ${this.label} (node #${this.id}) needs its saved tensor ${k} (${source}, ${alias.dtype}[${alias.shape.join(', ')}]), ` +
        `but it was modified by an in-place operation: it is at version ${now}; the graph saved version ${saved}. ` +
        'Hint: take the gradient before the optimiser step (or any in-place update of that tensor), or compute ' +
        'the graph from a clone of the tensor that nothing writes into.',
    );
  }

  /**
   * The saved tensors for a VJP. Without a graph the node-less aliases do; with one, each gets a fresh handle
   * carrying its node, so the VJP's ops record edges back into the forward graph (the caller disposes them).
   */
  unpack(withGraph: boolean): { tensors: Tensor[]; temporaries: Tensor[] } {
    if (this.savedFreed && this.hadSaved) {
      throw new GraphFreedError(
        `backward through '${this.kind}' (node #${this.id}) a second time: its saved tensors were freed after the ` +
          'first backward. Pass retainGraph: true (or createGraph: true) to the first backward/grad call.',
      );
    }
    if (!withGraph) return { tensors: this.saved.map((s) => s.alias), temporaries: [] };
    const tensors = this.saved.map((s) => {
      const h = new Tensor(s.alias.storage.retain(), s.alias.shape, s.alias.dtype).pinVersion(s.pin);
      h.requiresGrad = s.requiresGrad;
      h.node = s.isOutput ? this : s.node;
      return h;
    });
    return { tensors, temporaries: tensors };
  }

  get isSavedFreed(): boolean {
    return this.savedFreed && this.hadSaved;
  }

  /** Drops the saved tensors after a backward without retainGraph; the structure stays for a clear error. */
  releaseSaved(): void {
    if (this.savedFreed) return;
    this.savedFreed = true;
    for (const s of this.saved) {
      const count = (savedStorages.get(s.alias.storage) ?? 1) - 1;
      if (count <= 0) savedStorages.delete(s.alias.storage);
      else savedStorages.set(s.alias.storage, count);
      s.alias.dispose();
      s.node?.release();
    }
    this.saved = [];
  }

  freeResources(): void {
    this.releaseSaved();
    for (const n of this.inputs) n?.release();
  }
}

/** The autograd node of a tensor, making a leaf for a tensor whose `requiresGrad` was set by hand. */
export function nodeOf(t: Tensor): Node {
  const n = t.node;
  if (n instanceof Node) return n;
  if (n) throw new Error(`tensor #${t.id} carries a foreign autograd node (${n.kind})`);
  const leaf = new LeafNode(t);
  t.node = leaf;
  return leaf;
}
