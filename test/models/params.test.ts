/** @file Parameter-tree utilities: traversal order, map/zip/fromLeaves, flatten ↔ unflatten (values and gradients), algebra, errors. */
import { describe, expect, it } from 'vitest';
import * as ag from '@metagrad/autograd';
import * as raw from '@metagrad/tensor';
import type { Tensor } from '@metagrad/tensor';
import {
  type ParamTree,
  addTree,
  axpyTree,
  countLeaves,
  countParams,
  detachTree,
  disposeTree,
  dotTree,
  flattenTree,
  forEachLeaf,
  fromLeaves,
  leaves,
  mapTree,
  namedLeaves,
  normTree,
  requiresGradTree,
  scaleTree,
  subTree,
  unflattenTree,
  zipTree,
} from '@metagrad/models';
import { useDevice } from '../helpers/device';

const device = useDevice();
const t = (data: number[], shape: number[]) => raw.tensor(data, shape, 'f32', device());
const values = async (tree: ParamTree) => Promise.all(leaves(tree).map(async (x) => Array.from(await x.toArray())));

/** { w: [2,2], layers: [{ b: [3] }, { b: [1] }] } with values 1..8. */
function sample() {
  return { w: t([1, 2, 3, 4], [2, 2]), layers: [{ b: t([5, 6, 7], [3]) }, { b: t([8], [1]) }] };
}

describe('traversal', () => {
  it('is depth-first, records in insertion order, arrays by index, with dotted paths', async () => {
    const tree = sample();
    expect(Object.keys(namedLeaves(tree))).toEqual(['w', 'layers.0.b', 'layers.1.b']);
    const paths: string[] = [];
    forEachLeaf(tree, (_x, p) => paths.push(p));
    expect(paths).toEqual(['w', 'layers.0.b', 'layers.1.b']);
    expect(countLeaves(tree)).toBe(3);
    expect(countParams(tree)).toBe(8);
    expect(await values(tree)).toEqual([[1, 2, 3, 4], [5, 6, 7], [8]]);
    // A bare tensor and a top-level array are trees too.
    expect(Object.keys(namedLeaves([tree.w, tree.w]))).toEqual(['0', '1']);
    expect(countLeaves(tree.w)).toBe(1);
    disposeTree(tree);
  });

  it('mapTree keeps structure and passes paths; fromLeaves is the inverse of leaves', async () => {
    const tree = sample();
    const seen: string[] = [];
    const doubled = mapTree(tree, (x, p) => (seen.push(p), ag.mulScalar(x, 2)));
    expect(seen).toEqual(['w', 'layers.0.b', 'layers.1.b']);
    expect(doubled.layers[1].b.shape).toEqual([1]);
    expect(await values(doubled)).toEqual([[2, 4, 6, 8], [10, 12, 14], [16]]);
    const rebuilt = fromLeaves(tree, leaves(doubled));
    expect(rebuilt.layers[0].b).toBe(doubled.layers[0].b);
    expect(() => fromLeaves(tree, leaves(doubled).slice(1))).toThrow(/got 2 tensors for a tree with 3 leaves/);
    disposeTree([tree, doubled]);
  });

  it('zipTree combines leafwise and names the mismatching leaf', async () => {
    const [a, b] = [sample(), sample()];
    const prod = zipTree(a, b, (x, y) => ag.mul(x, y));
    expect(await values(prod)).toEqual([[1, 4, 9, 16], [25, 36, 49], [64]]);
    const wrongShape = { w: t([1, 2, 3, 4], [4]), layers: b.layers };
    expect(() => zipTree(a, wrongShape, (x) => x)).toThrow(/leaf 'w' has shapes \[2, 2\] and \[4\]/);
    expect(() => zipTree(a, { w: b.w }, (x) => x)).toThrow(/trees have 3 and 1 leaves/);
    disposeTree([a, b, prod, wrongShape.w]);
  });
});

describe('flatten and unflatten', () => {
  it('round-trip values and shapes; a wrong-size vector is refused', async () => {
    const tree = sample();
    const flat = flattenTree(tree);
    expect(flat.shape).toEqual([8]);
    expect(Array.from(await flat.toArray())).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const back = unflattenTree(flat, tree);
    expect(back.w.shape).toEqual([2, 2]);
    expect(await values(back)).toEqual(await values(tree));
    const single = flattenTree(tree.w);
    expect(single.shape).toEqual([4]);
    expect(() => unflattenTree(t([1, 2], [2]), tree)).toThrow(/vector of shape \[2\] does not hold the tree's 8 parameters/);
    disposeTree([tree, flat, back, single]);
  });

  it('gradients flow through both directions (and leak nothing)', async () => {
    await ag.expectNoLeaks(async () => {
      const source = sample();
      const tree = requiresGradTree(source);
      const before = sample();
      // f(tree) = Σ flatten(tree)² → gradient 2·tree, leafwise.
      const flat = flattenTree(tree);
      const loss = raw.tidy(() => ag.sum(ag.square(flat)));
      const grads = ag.grad(loss, leaves(tree));
      expect(await values(grads)).toEqual((await values(before)).map((v) => v.map((x) => 2 * x)));
      // g(v) = Σ_leaves Σ (leaf ⊙ c) with leaves = unflatten(v) → gradient flatten(c).
      const v = ag.requiresGrad(raw.tensor([1, 2, 3, 4, 5, 6, 7, 8], [8], 'f32', device()));
      const parts = unflattenTree(v, before);
      const c = mapTree(before, (x) => ag.mulScalar(x, 3));
      const dot = dotTree(parts, c);
      const [gv] = ag.grad(dot, v);
      expect(Array.from(await gv.toArray())).toEqual([3, 6, 9, 12, 15, 18, 21, 24]);
      raw.dispose([source, tree, before, flat, loss, grads, v, parts, c, dot, gv]);
    }, device());
  });
});

describe('algebra', () => {
  it('add, sub, scale, axpy, dot and norm', async () => {
    const [a, b] = [sample(), mapTree(sample(), (x) => ag.mulScalar(x, -1))];
    const results = [addTree(a, b), subTree(a, b), scaleTree(a, 0.5), axpyTree(2, a, b)];
    const [sum, diff, half, axpy] = await Promise.all(results.map(values));
    const base = [[1, 2, 3, 4], [5, 6, 7], [8]];
    expect(sum).toEqual(base.map((v) => v.map(() => 0)));
    expect(diff).toEqual(base.map((v) => v.map((x) => 2 * x)));
    expect(half).toEqual(base.map((v) => v.map((x) => x / 2)));
    expect(axpy).toEqual(base); // 2a − a
    const dot = dotTree(a, a);
    const norm = normTree(a);
    expect(await dot.item()).toBe(204); // 1² + … + 8²
    expect(await norm.item()).toBeCloseTo(Math.sqrt(204), 5);
    expect(() => dotTree(a, { w: a.w })).toThrow(/trees have 3 and 1 leaves/);
    expect(() => dotTree({}, {})).toThrow(/empty tree/);
    raw.dispose([a, b, results, dot, norm]);
  });

  it('an SGD step axpyTree(−lr, grads, params) is differentiable in the parameters (second order)', async () => {
    // θ' = θ − lr·∇(½Σθ³)... use L(θ) = Σθ³/3 → ∇ = θ², θ' = θ − lr·θ², d Σθ' / dθ = 1 − 2·lr·θ.
    const theta = { a: ag.requiresGrad(t([1, 2], [2])), b: [ag.requiresGrad(t([3], [1]))] };
    const loss = ag.sum(flattenTree(mapTree(theta, (x) => ag.mulScalar(ag.powScalar(x, 3), 1 / 3))));
    const grads = fromLeaves(theta, ag.grad(loss, leaves(theta), { createGraph: true }));
    const next = axpyTree(-0.1, grads, theta);
    const outer = ag.sum(flattenTree(next));
    const hyper = ag.grad(outer, leaves(theta));
    const got = await values(hyper);
    expect(got[0][0]).toBeCloseTo(0.8, 5);
    expect(got[0][1]).toBeCloseTo(0.6, 5);
    expect(got[1][0]).toBeCloseTo(0.4, 5);
    raw.dispose([theta, loss, grads, next, outer, hyper]);
  });

  it('detachTree cuts the graph; requiresGradTree makes fresh leaves; disposeTree frees every leaf', () => {
    const tree = sample();
    const tracked = requiresGradTree(tree);
    expect(leaves(tracked).every((x) => x.requiresGrad)).toBe(true);
    expect(leaves(tree).some((x) => x.requiresGrad)).toBe(false);
    const y = mapTree(tracked, (x) => ag.mulScalar(x, 2));
    const cut = detachTree(y);
    expect(leaves(cut).some((x) => x.requiresGrad || x.node !== null)).toBe(false);
    expect(() => ag.grad(ag.sum(cut.w), tracked.w)).toThrow();
    const all: Tensor[] = [...leaves(tree), ...leaves(tracked), ...leaves(y), ...leaves(cut)];
    [tree, tracked, y, cut].forEach((x) => disposeTree(x));
    expect(all.every((x) => x.isDisposed)).toBe(true);
  });
});
