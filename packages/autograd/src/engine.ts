/** @file The backward engine: grad() and backward() over the tape in topological order (no recursion). */
import { checkBoolean, DTypeError, keep, ones, ShapeError, tidy, type Tensor } from '@metagrad/tensor';
import { checkFlagOptions, checkTensorArg, tensorList } from './args';
import { LeafNode, Node, OpNode, share } from './graph';
import { enableGrad, noGrad } from './mode';
import { add } from './ops/elementwise';
import type { Prim, VjpContext, VjpRule } from './prims';
import { VJP_RULES } from './rules';

export interface GradOptions {
  /** Cotangents for the outputs (default: ones, only for single-element outputs). */
  gradOutputs?: Tensor | readonly (Tensor | null | undefined)[];
  /** Record the backward itself so its results can be differentiated again. */
  createGraph?: boolean;
  /** Keep saved tensors for another backward (defaults to createGraph). */
  retainGraph?: boolean;
  /** Return null for inputs the outputs do not depend on, instead of throwing. */
  allowUnused?: boolean;
}

const asList = <T>(x: T | readonly T[]): T[] => (Array.isArray(x) ? [...(x as readonly T[])] : [x as T]);

const GRAD_OPTIONS = ['gradOutputs', 'createGraph', 'retainGraph', 'allowUnused'] as const;

/** Gradient seeds: a handle per output node (shared or freshly made ones), owned by the engine. */
function seedGradients(outputs: Tensor[], gradOutputs: GradOptions['gradOutputs'], what: string, createGraph: boolean): Map<Node, Tensor> {
  const given = gradOutputs === undefined ? [] : asList(gradOutputs);
  if (given.length > 0 && given.length !== outputs.length) {
    throw new ShapeError(`${what}: ${outputs.length} outputs but ${given.length} gradOutputs`);
  }
  const seeds = new Map<Node, Tensor>();
  try {
    outputs.forEach((out, i) => seedOne(seeds, out, given[i], i, what, createGraph));
  } catch (e) {
    for (const g of seeds.values()) g.dispose();
    throw e;
  }
  return seeds;
}

/** One output's seed: a shared handle on the given cotangent, or ones for a single-element output. */
function seedOne(seeds: Map<Node, Tensor>, out: Tensor, given: Tensor | null | undefined, i: number, what: string, createGraph: boolean): void {
  out.assertAlive(what);
  const node = out.node;
  if (!(node instanceof Node) || !out.requiresGrad) {
    throw new Error(`${what}: output ${i} ${out} does not require grad and has no graph (was it computed under noGrad, or from inputs without requiresGrad?)`);
  }
  let g = given;
  if (g !== null && g !== undefined) {
    checkTensorArg(what, `gradOutputs[${i}]`, g);
    g.assertAlive(what);
    if (g.shape.length !== out.shape.length || g.shape.some((d, k) => d !== out.shape[k])) {
      throw new ShapeError(`${what}: gradOutputs[${i}] has shape [${g.shape.join(', ')}], output has [${out.shape.join(', ')}]`);
    }
    g = share(g);
  } else {
    if (out.size !== 1) {
      throw new ShapeError(`${what}: output ${i} has shape [${out.shape.join(', ')}]; gradients are implied only for single-element outputs, pass gradOutputs`);
    }
    g = noGrad(() => ones(out.shape, 'f32', out.device));
  }
  accumulate(seeds, node, g, createGraph);
}

/** Sums gradients arriving at one node; recorded when the backward itself is (createGraph). */
function accumulate(grads: Map<Node, Tensor>, node: Node, g: Tensor, createGraph: boolean): void {
  const previous = grads.get(node);
  if (!previous) {
    grads.set(node, g);
    return;
  }
  const sum = () => add(previous, g);
  grads.set(node, createGraph ? enableGrad(sum) : noGrad(sum));
  previous.dispose();
  g.dispose();
}

/** Reachable nodes in an order where every node comes after all of its consumers (Kahn over consumer counts). */
function topologicalOrder(roots: Iterable<Node>): Node[] {
  const consumers = new Map<Node, number>();
  const seen = new Set<Node>();
  const stack = [...roots];
  while (stack.length) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    if (!(n instanceof OpNode)) continue;
    for (const input of n.inputs) {
      if (!input) continue;
      consumers.set(input, (consumers.get(input) ?? 0) + 1);
      if (!seen.has(input)) stack.push(input);
    }
  }
  const order: Node[] = [];
  const ready = [...seen].filter((n) => !consumers.get(n));
  while (ready.length) {
    const n = ready.pop()!;
    order.push(n);
    if (!(n instanceof OpNode)) continue;
    for (const input of n.inputs) {
      if (!input) continue;
      const left = consumers.get(input)! - 1;
      consumers.set(input, left);
      if (left === 0) ready.push(input);
    }
  }
  return order;
}

interface EngineRun {
  seeds: Map<Node, Tensor>;
  isTarget: (n: Node) => boolean;
  /** Receives each target's gradient (ownership passes to it). */
  onTarget: (n: Node, g: Tensor) => void;
  createGraph: boolean;
  retainGraph: boolean;
}

function runEngine({ seeds, isTarget, onTarget, createGraph, retainGraph }: EngineRun): void {
  const order = topologicalOrder(seeds.keys());
  // A node is worth visiting only if some target lies below it.
  const leadsToTarget = new Set<Node>();
  for (let i = order.length - 1; i >= 0; i--) {
    const n = order[i];
    if (isTarget(n) || (n instanceof OpNode && n.inputs.some((input) => input && leadsToTarget.has(input)))) leadsToTarget.add(n);
  }
  const grads = seeds;
  try {
    for (const n of order) {
      const g = grads.get(n);
      grads.delete(n);
      if (!g) continue;
      const expands = n instanceof OpNode && n.inputs.some((input) => input && leadsToTarget.has(input));
      try {
        if (expands) {
          const inputGrads = applyRule(n as OpNode, g, createGraph, leadsToTarget);
          (n as OpNode).inputs.forEach((input, k) => {
            const gi = inputGrads[k];
            if (!gi) return;
            if (input && leadsToTarget.has(input)) accumulate(grads, input, gi, createGraph);
            else gi.dispose();
          });
          if (!retainGraph) (n as OpNode).releaseSaved();
        }
      } catch (e) {
        g.dispose();
        throw e;
      }
      if (isTarget(n)) onTarget(n, g);
      else g.dispose();
    }
  } finally {
    for (const g of grads.values()) g.dispose();
  }
}

function applyRule(node: OpNode, gy: Tensor, createGraph: boolean, leadsToTarget: Set<Node>): (Tensor | null)[] {
  const { tensors, temporaries } = node.unpack(createGraph);
  try {
    const ctx: VjpContext<Prim> = {
      gy,
      saved: tensors,
      attrs: node.attrs,
      inputShapes: node.inputShapes,
      outputShape: node.outputShape,
      needs: node.inputs.map((input) => Boolean(input && leadsToTarget.has(input))),
      device: node.device,
    };
    const rule = VJP_RULES[node.kind] as VjpRule<Prim>;
    const run = () => tidy(() => rule(ctx));
    const results = createGraph ? enableGrad(run) : noGrad(run);
    const borrowed = new Set<Tensor>([gy, ...tensors]);
    return node.inputs.map((_, k) => {
      let r = results[k] ?? null;
      if (!r) return null;
      if (borrowed.has(r)) r = share(r);
      const want = node.inputShapes[k];
      if (r.shape.length !== want.length || r.shape.some((d, i) => d !== want[i])) {
        r.dispose();
        throw new ShapeError(`VJP of '${node.kind}' returned shape [${r.shape.join(', ')}] for input ${k} of shape [${want.join(', ')}]`);
      }
      return r;
    });
  } finally {
    for (const t of temporaries) t.dispose();
  }
}

/**
 * Gradients of `outputs` with respect to `inputs` (like torch.autograd.grad), as new tensors the caller owns.
 * With `createGraph` the results carry a graph and can be differentiated again.
 */
export function grad(outputs: Tensor | readonly Tensor[], inputs: Tensor | readonly Tensor[], options?: GradOptions & { allowUnused?: false }): Tensor[];
export function grad(outputs: Tensor | readonly Tensor[], inputs: Tensor | readonly Tensor[], options: GradOptions): (Tensor | null)[];
export function grad(outputs: Tensor | readonly Tensor[], inputs: Tensor | readonly Tensor[], options: GradOptions = {}): (Tensor | null)[] {
  const outputList = tensorList('grad()', 'outputs', outputs);
  const inputList = tensorList('grad()', 'inputs', inputs);
  const opts = checkFlagOptions('grad()', options, GRAD_OPTIONS, ['createGraph', 'retainGraph', 'allowUnused']) as GradOptions;
  const createGraph = opts.createGraph ?? false;
  const retainGraph = opts.retainGraph ?? createGraph;
  const targets = inputList.map((t, i) => {
    t.assertAlive('grad() input');
    if (!(t.node instanceof Node) || !t.requiresGrad) {
      throw new Error(`grad(): input ${i} ${t} does not require grad (call requiresGrad(t) before computing the outputs)`);
    }
    return t.node;
  });
  const targetSet = new Set<Node>(targets);
  const found = new Map<Node, Tensor>();
  const seeds = seedGradients(outputList, opts.gradOutputs, 'grad()', createGraph);
  try {
    runEngine({
      seeds,
      isTarget: (n) => targetSet.has(n),
      onTarget: (n, g) => found.set(n, g),
      createGraph,
      retainGraph,
    });
  } catch (e) {
    for (const g of found.values()) g.dispose();
    throw e;
  }
  // The same tensor may be asked for twice; every slot gets its own handle.
  const handedOut = new Set<Tensor>();
  const result = targets.map((n, i) => {
    const g = found.get(n);
    if (!g) {
      if (opts.allowUnused) return null;
      for (const t of found.values()) t.dispose();
      throw new Error(`grad(): input ${i} ${inputList[i]} is not used by the outputs (pass allowUnused: true to get null)`);
    }
    if (handedOut.has(g)) return share(g);
    handedOut.add(g);
    return g;
  });
  return result;
}

export interface BackwardOptions {
  retainGraph?: boolean;
  createGraph?: boolean;
}

/** Accumulates d(output)/d(leaf) into every leaf's `.grad` (kept out of tidy scopes: the leaf owns it). */
export function backward(output: Tensor, gradOutput?: Tensor, options: BackwardOptions = {}): void {
  checkTensorArg('backward()', 'output', output);
  // backward(y, { retainGraph: true }) (torch's keyword habit) lands here too: options go third.
  if (gradOutput !== undefined && gradOutput !== null)
    checkTensorArg('backward()', 'gradOutput (options go third: backward(y, undefined, { retainGraph }))', gradOutput);
  const opts = checkFlagOptions('backward()', options, ['retainGraph', 'createGraph'], ['retainGraph', 'createGraph']) as BackwardOptions;
  const createGraph = opts.createGraph ?? false;
  const retainGraph = opts.retainGraph ?? createGraph;
  const seeds = seedGradients([output], gradOutput ? [gradOutput] : undefined, 'backward()', createGraph);
  runEngine({
    seeds,
    isTarget: (n) => n instanceof LeafNode,
    onTarget: (n, g) => {
      const leaf = (n as LeafNode).tensor;
      // A leaf disposed, or switched off with requiresGrad(t, false) after the graph was recorded, gets nothing (as torch).
      if (leaf.isDisposed || !leaf.requiresGrad) {
        g.dispose();
        return;
      }
      const previous = leaf.grad;
      if (previous) {
        leaf.grad = keep(createGraph ? enableGrad(() => add(previous, g)) : noGrad(() => add(previous, g)));
        previous.dispose();
        g.dispose();
      } else {
        leaf.grad = keep(g);
      }
    },
    createGraph,
    retainGraph,
  });
}

/** Marks a tensor as a leaf that gradients flow to (f32 only); `false` makes it a constant again. */
export function requiresGrad<T extends Tensor>(t: T, flag = true): T {
  checkTensorArg('requiresGrad()', 't', t);
  checkBoolean('requiresGrad()', 'flag', flag); // 'false' would mark the tensor as requiring grad
  t.assertAlive('requiresGrad');
  if (t.node instanceof OpNode) {
    throw new Error(`requiresGrad(): ${t} is the result of '${t.node.kind}', not a leaf; use detach(t) to get a leaf`);
  }
  if (!flag) {
    t.node = null;
    t.requiresGrad = false;
    return t;
  }
  if (t.dtype !== 'f32') throw new DTypeError(`requiresGrad(): only f32 tensors can require grad, ${t} is ${t.dtype}`);
  if (!(t.node instanceof LeafNode)) t.node = new LeafNode(t);
  t.requiresGrad = true;
  return t;
}

/** A new handle on the same storage with no graph (gradients stop here); it shares the storage's version. */
export function detach(t: Tensor): Tensor {
  checkTensorArg('detach()', 't', t);
  t.assertAlive('detach');
  return t.view(t.shape);
}
