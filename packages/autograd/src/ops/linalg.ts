/** @file Differentiable batched matmul (with transpose flags and broadcast batch dims) and its VJP. */
import * as raw from '@metagrad/tensor/raw';
import type { Tensor } from '@metagrad/tensor';
import type { RuleTable } from '../prims';
import { record } from '../record';
import { sumToShape } from './reduce';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
}

/** op(a) @ op(b), where op transposes the last two dims when the flag is set. */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  // The raw op gets options built here, so it cannot see a typo ({ transposeB: true }) or a positional habit
  // (matmul(a, b, true)): check what the caller passed. The kernel variant is not offered: the VJP's matmuls pick their own.
  raw.checkTensors('matmul', { a, b });
  raw.checkOptions('matmul', options, ['transA', 'transB']);
  const transA = raw.checkBoolean('matmul', 'transA', options?.transA ?? false);
  const transB = raw.checkBoolean('matmul', 'transB', options?.transB ?? false);
  const y = raw.matmul(a, b, { transA, transB });
  return record('matmul', [a, b], y, { transA, transB }, () => [a, b]);
}

export const linalgRules: RuleTable<'matmul'> = {
  matmul: ({ gy, saved: [a, b], attrs: { transA, transB }, inputShapes: [sa, sb], needs }) => {
    // d op(a) = gy·op(b)ᵀ and d op(b) = op(a)ᵀ·gy, written with transpose flags instead of copies;
    // batch dims that were broadcast are summed back.
    let ga: Tensor | null = null;
    let gb: Tensor | null = null;
    if (needs[0]) {
      ga = transA ? matmul(b, gy, { transA: transB, transB: true }) : matmul(gy, b, { transB: !transB });
      ga = sumToShape(ga, sa);
    }
    if (needs[1]) {
      gb = transB ? matmul(gy, a, { transA: true, transB: transA }) : matmul(a, gy, { transA: !transA });
      gb = sumToShape(gb, sb);
    }
    return [ga, gb];
  },
};
