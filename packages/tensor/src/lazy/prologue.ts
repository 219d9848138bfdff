/** @file Reduction prologues (lazy fusion): a reduction whose input is pending evaluates its expression at each load. */
/*
 * Rules (COMPILE-NOTES §6.2 item 5), on only while fusion is on for the device:
 * - sum/mean/max/min/logsumexp, softmax/logSoftmax and dot of a pending input lower the input's expression (realize.ts'
 *   `lower`) into the first pass's loads (fusedLoad's `pl`/`pl4`), so the input costs no dispatch and no buffer.
 *   Leaves are read 'full', 'scalar' or 'strided' exactly as in a realisation. A view of a pending value with another
 *   shape is fine here (the reduction reads linear elements, the expression's order). Later passes read partials.
 * - The pending input itself stays pending (recomputed from its still-retained leaves if something reads it later;
 *   never computed if it is dropped), unless a handle other than the one handed to the reduction holds it (an
 *   autograd saved output, another user handle): then it is written as an extra output of the first pass. Inner
 *   values of the input's size with a live handle are extra outputs too, as a realisation would write them. Every
 *   element is loaded (so written) at least once by the first pass; logsumexp and softmax load twice or three times
 *   and write the same value again.
 * - Cuts: argmax, and anything over the binding limit or rank 8 (already cut when the expression was built), realise
 *   the input first as before. dot of two realised tensors keeps its `product` kernel.
 */
import type { FusedProgram } from '@metagrad/kernels-wgsl';
import type { Tensor, Storage } from '../tensor';
import { fusionEnabled } from './flag';
import { opNode, Pending } from './expr';
import { extraOutputs, lower, programOf, programWords, writeOutputs, type Lowered } from './realize';

/** A lowered pending input for a host kernel's first pass. */
export interface Prologue {
  readonly program: FusedProgram;
  /** Uniform words the host appends after its own words padded to a multiple of 4 (16-byte aligned). */
  readonly words: readonly number[];
  /** Records the host's dispatch given the leaf buffers (bound first) and the extra output buffers (bound last). */
  run(record: (leaves: GPUBuffer[], outputs: GPUBuffer[]) => void): void;
}

const maxBuffers = (t: Tensor) => t.device.limits.maxStorageBuffersPerShaderStage || 8;

function build(l: Lowered, handed: Tensor[], hostBuffers: number): Prologue {
  const counts = new Map<Storage, number>();
  for (const t of handed) counts.set(t.storage, (counts.get(t.storage) ?? 0) + 1);
  const extra = extraOutputs(l, counts, maxBuffers(handed[0]) - l.bindings.length - hostBuffers);
  return {
    program: programOf(l, [l.rootStep, ...extra.steps]),
    words: programWords(l),
    run(record) {
      const leaves = l.bindings.map((s) => s.buffer);
      if (!extra.storages.length) record(leaves, []);
      else writeOutputs(extra.storages, (outs) => record(leaves, outs));
    },
  };
}

/**
 * The prologue for a host kernel (with `hostBuffers` storage bindings of its own) reading `x`, or null: fusion
 * off, or `x` not pending (then the host reads `x.buffer` as usual).
 */
export function pendingPrologue(x: Tensor, hostBuffers = 1): Prologue | null {
  const p = x.storage.pending;
  if (!(p instanceof Pending) || !fusionEnabled(x.device)) return null;
  const l = p.root.k === 'op' ? lower(p.root) : null;
  // A pending matmul cannot run inside a reduction: realise the input (the matmul with the expression as its
  // epilogue, one dispatch), and the host reads it.
  if (!l || l.mm) {
    void x.storage.buffer;
    return null;
  }
  return build(l, [x], hostBuffers);
}

/** The prologue mul(x, y) for dot, or null when neither is pending (dot's `product` kernel then reads both). */
export function productPrologue(x: Tensor, y: Tensor, hostBuffers = 1): Prologue | null {
  if (!(x.storage.pending instanceof Pending || y.storage.pending instanceof Pending) || !fusionEnabled(x.device)) return null;
  // Operands holding a pending matmul are realised first (epilogue), as for pendingPrologue.
  for (const t of [x, y]) {
    const p = t.storage.pending;
    if (p instanceof Pending && (p.root.k === 'mm' || p.root.mms.length)) void t.storage.buffer;
  }
  if (!(x.storage.pending instanceof Pending || y.storage.pending instanceof Pending)) return null;
  return build(lower(opNode('mul', [x, y], x.shape, maxBuffers(x))), [x, y], hostBuffers);
}
