/** @file A readable dump of the graph behind a tensor (what METAGRAD_DEBUG users look at to find a leak). */
import type { Tensor } from '@metagrad/tensor';
import { LeafNode, Node, OpNode } from './graph';

/** One line per node reachable from `t`, consumers first: id, op, output shape, input node ids, saved state. */
export function formatGraph(t: Tensor): string {
  const root = t.node;
  if (!(root instanceof Node)) return `${t}: no graph`;
  const lines: string[] = [];
  const seen = new Set<Node>();
  const queue: Node[] = [root];
  while (queue.length) {
    const n = queue.shift()!;
    if (seen.has(n)) continue;
    seen.add(n);
    if (n instanceof LeafNode) {
      lines.push(`#${n.id} leaf ${n.tensor}`);
    } else if (n instanceof OpNode) {
      const inputs = n.inputs.map((i) => (i ? `#${i.id}` : '·')).join(', ');
      lines.push(`#${n.id} ${n.kind} [${n.outputShape.join(', ')}] ← (${inputs})${n.isSavedFreed ? ' saved tensors freed' : ''} refs=${n.refCount}`);
      for (const i of n.inputs) if (i) queue.push(i);
    }
  }
  return lines.join('\n');
}
