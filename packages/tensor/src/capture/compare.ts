/** @file Comparing two traced calls of one compiled function: a host value that differs would be frozen into the replay. */
import type { Storage } from '../tensor';
import type { Command, Recording } from './recording';

/** One command with its buffers named by role (argument k, or the n-th other buffer met), host values kept. */
export interface Canonical {
  readonly text: string;
  readonly kernel?: string;
  readonly uniform?: Uint8Array;
  readonly data?: Uint8Array;
}

/** A traced call in comparable form (taken right after the trace: its argument storages may be disposed later). */
export function canonicalize(rec: Recording, args: readonly Storage[]): Canonical[] {
  const names = new Map<GPUBuffer, string>();
  args.forEach((s, i) => names.set(s.buffer, `arg${i}`));
  const name = (b: GPUBuffer): string => {
    let n = names.get(b);
    if (n === undefined) names.set(b, (n = `b${names.size}`));
    return n;
  };
  return rec.commands.map((c: Command): Canonical => {
    switch (c.k) {
      case 'dispatch':
        return {
          text: `dispatch ${c.spec.key} [${c.workgroups.join(',')}] (${c.buffers.map(name).join(',')})${c.thunk ? ' volatile' : ''}`,
          kernel: c.spec.key,
          uniform: c.thunk ? undefined : (c.uniform ?? undefined),
        };
      case 'copy':
        return { text: `copy ${name(c.src)}+${c.srcOffset} → ${name(c.dst)}+${c.dstOffset} (${c.bytes} B)` };
      case 'write':
        return { text: `upload ${c.data.byteLength} B → ${name(c.buffer)}+${c.offset}`, data: c.data };
      default:
        return { text: c.k };
    }
  });
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  if (!a || !b) return a === b;
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function word(bytes: Uint8Array, i: number): string {
  const view = new DataView(bytes.buffer, bytes.byteOffset + i * 4, 4);
  return `${view.getUint32(0, true)} (as f32 ${view.getFloat32(0, true)})`;
}

const FROZEN_HINT =
  'a host number that changes per call (a step count, a scheduled lr, a seed) would be frozen into the replay: ' +
  'pass it as a tensor argument, draw random numbers from a Generator, or compute it in device.onReplay';

/**
 * The first difference between two traced calls of the same signature, described for a TraceError, or null when
 * they issue the same commands with the same host values (volatile uniforms excepted).
 */
export function firstDifference(x: readonly Canonical[], y: readonly Canonical[]): string | null {
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    if (x[i].text !== y[i].text) {
      return `the function is not the same step on every call: command #${i} was \`${x[i].text}\` on one call and \`${y[i].text}\` on the next (a host branch or a shape that depends on a value?)`;
    }
    if (!sameBytes(x[i].uniform, y[i].uniform)) {
      const u = x[i].uniform!;
      const v = y[i].uniform!;
      let w = 0;
      while (w * 4 < u.byteLength && u[w * 4] === v[w * 4] && u[w * 4 + 1] === v[w * 4 + 1] && u[w * 4 + 2] === v[w * 4 + 2] && u[w * 4 + 3] === v[w * 4 + 3])
        w++;
      return `kernel ${x[i].kernel} (command #${i}) got uniform word ${w} = ${word(u, w)} on one call and ${word(v, w)} on the next: ${FROZEN_HINT}`;
    }
    if (!sameBytes(x[i].data, y[i].data)) {
      return `command #${i} (\`${x[i].text}\`) uploads host data that changed between calls (tensor(...) from host values inside the function): pass the data as a tensor argument`;
    }
  }
  if (x.length !== y.length) return `the function issued ${x.length} commands on one call and ${y.length} on the next`;
  return null;
}
