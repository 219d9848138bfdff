/** @file Recording one differentiable op: the OpNode that links an output to its inputs and saved tensors. */
import type { Tensor } from '@metagrad/tensor';
import { nodeOf, OpNode } from './graph';
import { isGradEnabled } from './mode';
import type { Prim, PrimAttrs } from './prims';

/** Whether an op on these inputs must be recorded (grad mode on and some input requires grad). */
export function shouldRecord(inputs: readonly (Tensor | null | undefined)[]): boolean {
  if (!isGradEnabled()) return false;
  for (const t of inputs) if (t?.requiresGrad) return true;
  return false;
}

/**
 * Attaches an OpNode to `output` when needed and returns `output`. `save` runs only when recording, so ops
 * that need extra tensors for their VJP pay for them only under grad mode.
 */
export function record<P extends Prim>(
  prim: P,
  inputs: readonly (Tensor | null | undefined)[],
  output: Tensor,
  attrs: PrimAttrs[P],
  save?: () => readonly Tensor[],
): Tensor {
  if (!shouldRecord(inputs)) return output;
  // A raw fast path may hand back an input itself; the output needs its own handle to carry its own node.
  if (inputs.includes(output)) output = output.view(output.shape);
  const nodes = inputs.map((t) => (t?.requiresGrad ? nodeOf(t) : null));
  const node = new OpNode(
    prim,
    nodes,
    inputs.map((t) => t?.shape ?? []),
    attrs,
    output.shape,
    output.device,
  );
  output.node = node;
  output.requiresGrad = true;
  node.save(save ? save() : [], output);
  return output;
}
