/** @file Parameter trees: nested records/arrays of tensors, and differentiable utilities over them (map, zip, flatten, algebra). */
import { ShapeError, empty, type Tensor } from '@metagrad/tensor';
import { add, axpby, concat, detach, dot, mulScalar, reshape, requiresGrad, slice, sqrt, sub } from '@metagrad/autograd';

/**
 * A model's parameters (or its gradients, or optimiser state): a tensor, an array of trees, or a record of trees.
 * Leaf order is depth-first, arrays by index and records by insertion order, so it is stable across map/zip.
 */
export type ParamTree = Tensor | readonly ParamTree[] | { readonly [key: string]: ParamTree };

function isTensorLike(x: unknown): x is Tensor {
  return typeof x === 'object' && x !== null && 'shape' in x && 'dtype' in x && typeof (x as Tensor).dispose === 'function';
}

/** Calls `fn` on every leaf with its path (`layers.0.weight`), depth-first. */
export function forEachLeaf(tree: ParamTree, fn: (t: Tensor, path: string) => void, path = ''): void {
  if (isTensorLike(tree)) return fn(tree, path);
  if (Array.isArray(tree)) {
    (tree as readonly ParamTree[]).forEach((child, i) => forEachLeaf(child, fn, path ? `${path}.${i}` : String(i)));
    return;
  }
  for (const [key, child] of Object.entries(tree as Record<string, ParamTree>)) forEachLeaf(child, fn, path ? `${path}.${key}` : key);
}

/** The leaves in tree order. */
export function leaves(tree: ParamTree): Tensor[] {
  const out: Tensor[] = [];
  forEachLeaf(tree, (t) => out.push(t));
  return out;
}

/** `{ path: tensor }` in tree order, e.g. for checkpoints. */
export function namedLeaves(tree: ParamTree): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  forEachLeaf(tree, (t, p) => (out[p] = t));
  return out;
}

/** A tree of the same structure with each leaf replaced by `fn(leaf, path)`. */
export function mapTree<T extends ParamTree>(tree: T, fn: (t: Tensor, path: string) => Tensor, path = ''): T {
  if (isTensorLike(tree)) return fn(tree, path) as T;
  if (Array.isArray(tree)) return (tree as readonly ParamTree[]).map((c, i) => mapTree(c, fn, path ? `${path}.${i}` : String(i))) as unknown as T;
  const out: Record<string, ParamTree> = {};
  for (const [k, c] of Object.entries(tree as Record<string, ParamTree>)) out[k] = mapTree(c, fn, path ? `${path}.${k}` : k);
  return out as T;
}

/** Rebuilds `like`'s structure from a flat list of leaves (the inverse of `leaves`). */
export function fromLeaves<T extends ParamTree>(like: T, values: readonly Tensor[]): T {
  const n = countLeaves(like);
  if (values.length !== n) throw new ShapeError(`fromLeaves: got ${values.length} tensors for a tree with ${n} leaves`);
  let i = 0;
  return mapTree(like, () => values[i++]);
}

/** Combines two trees of the same structure leaf by leaf; shapes must match. */
export function zipTree<T extends ParamTree>(a: T, b: ParamTree, fn: (x: Tensor, y: Tensor, path: string) => Tensor): T {
  const bl = leaves(b);
  const n = countLeaves(a);
  if (n !== bl.length) throw new ShapeError(`zipTree: trees have ${n} and ${bl.length} leaves`);
  let i = 0;
  return mapTree(a, (x, path) => {
    const y = bl[i++];
    if (x.shape.length !== y.shape.length || x.shape.some((d, k) => d !== y.shape[k])) {
      throw new ShapeError(`zipTree: leaf '${path}' has shapes [${x.shape.join(', ')}] and [${y.shape.join(', ')}]`);
    }
    return fn(x, y, path);
  });
}

export function countLeaves(tree: ParamTree): number {
  let n = 0;
  forEachLeaf(tree, () => n++);
  return n;
}

/** Number of scalar parameters. */
export function countParams(tree: ParamTree): number {
  let n = 0;
  forEachLeaf(tree, (t) => (n += t.size));
  return n;
}

/** All leaves concatenated into one differentiable vector (tree order, row-major). */
export function flattenTree(tree: ParamTree): Tensor {
  const parts = leaves(tree).map((t) => reshape(t, [t.size]));
  const out = parts.length === 1 ? parts[0] : concat(parts, 0);
  if (parts.length > 1) parts.forEach((p) => p.dispose());
  return out;
}

/** Splits a vector back into `like`'s structure and shapes (differentiable; the inverse of flattenTree). */
export function unflattenTree<T extends ParamTree>(vector: Tensor, like: T): T {
  const total = countParams(like);
  if (vector.shape.length !== 1 || vector.shape[0] !== total) {
    throw new ShapeError(`unflattenTree: vector of shape [${vector.shape.join(', ')}] does not hold the tree's ${total} parameters`);
  }
  let offset = 0;
  return mapTree(like, (t) => {
    const piece = slice(vector, [offset], [offset + t.size]);
    offset += t.size;
    const shaped = reshape(piece, t.shape);
    piece.dispose();
    return shaped;
  });
}

/** a + b leafwise. */
export const addTree = <T extends ParamTree>(a: T, b: ParamTree): T => zipTree(a, b, (x, y) => add(x, y));

/** a − b leafwise. */
export const subTree = <T extends ParamTree>(a: T, b: ParamTree): T => zipTree(a, b, (x, y) => sub(x, y));

/** s·a leafwise. */
export const scaleTree = <T extends ParamTree>(a: T, s: number): T => mapTree(a, (x) => mulScalar(x, s));

/** alpha·x + y leafwise (the SGD step is `axpyTree(-lr, grads, params)`). */
export function axpyTree<T extends ParamTree>(alpha: number, x: T, y: ParamTree): T {
  return zipTree(x, y, (a, b) => axpby(alpha, a, 1, b));
}

/** Σ⟨a_i, b_i⟩ over all leaves, as a differentiable scalar tensor. */
export function dotTree(a: ParamTree, b: ParamTree): Tensor {
  const al = leaves(a);
  const bl = leaves(b);
  if (al.length !== bl.length) throw new ShapeError(`dotTree: trees have ${al.length} and ${bl.length} leaves`);
  let total: Tensor | undefined;
  al.forEach((x, i) => {
    const s = dot(x, bl[i]); // one fused dispatch per leaf
    if (!total) total = s;
    else {
      const next = add(total, s);
      total.dispose();
      s.dispose();
      total = next;
    }
  });
  if (!total) throw new ShapeError('dotTree: empty tree');
  return total;
}

/** Euclidean norm over all leaves, as a differentiable scalar tensor. */
export function normTree(a: ParamTree): Tensor {
  const d = dotTree(a, a);
  const n = sqrt(d);
  d.dispose();
  return n;
}

/** Disposes every leaf. */
export function disposeTree(tree: ParamTree): void {
  forEachLeaf(tree, (t) => t.dispose());
}

/** New leaves sharing storage with the old ones, cut from any graph. */
export const detachTree = <T extends ParamTree>(tree: T): T => mapTree(tree, (t) => detach(t));

/** Detached leaf copies that require grad (fresh leaves for a new differentiation). */
export const requiresGradTree = <T extends ParamTree>(tree: T): T => mapTree(tree, (t) => requiresGrad(detach(t)));

/** A fresh copy of a tensor's values (new storage, no graph): one buffer copy, no kernel. */
function copyOf(t: Tensor): Tensor {
  t.assertAlive('clone');
  const out = empty(t.shape, t.dtype, t.device);
  if (t.size > 0) t.device.copy(t.buffer, 0, out.storage.buffer, 0, t.size * 4);
  return out;
}

/** Fresh copies of every leaf (new storage, no graph, one buffer copy each): what `lincombTree(1, x, 0, x)` spelled. */
export const cloneTree = <T extends ParamTree>(tree: T): T => mapTree(tree, copyOf);

/**
 * The tree algebra under names that say what they do, for estimator code that should read as its equations:
 * `tree.clone(θ)`, `tree.scale(g, -α)`, `tree.axpy(-α, g, θ)` (θ − αg), `tree.dot(a, b)`, `tree.norm(g)`.
 */
export const tree = {
  clone: cloneTree,
  add: addTree,
  sub: subTree,
  scale: scaleTree,
  axpy: axpyTree,
  dot: dotTree,
  norm: normTree,
  map: mapTree,
  zip: zipTree,
  leaves,
  fromLeaves,
  detach: detachTree,
  requiresGrad: requiresGradTree,
  dispose: disposeTree,
} as const;
