/**
 * @file Index-bounds bookkeeping for one device: the flag words index-reading kernels set (see kernels-wgsl
 * index-flags.ts), a ring of what each checked dispatch was, and the IndexOutOfRangeError built from the flags a
 * readback brings back.
 */
import type { IndexCheckedOp } from '@metagrad/kernels-wgsl';
import { INDEX_FLAG_WORDS, indexOpName } from '@metagrad/kernels-wgsl';
import { IndexOutOfRangeError } from './errors';

const COPY_SRC = 0x04;
const COPY_DST = 0x08;
const STORAGE = 0x80;
/** Bytes of flag words a readback carries after its payload when index-checked kernels ran. */
export const INDEX_FLAG_BYTES = INDEX_FLAG_WORDS * 4;
/** Index-checked dispatches whose description is kept for the error message (older ones are named by op only). */
const INDEX_TAG_RING = 256;

/** What an index-checked dispatch was, for the IndexOutOfRangeError message if its flag comes back set. */
interface IndexTag {
  tag: number;
  op: IndexCheckedOp;
  describe: () => string;
}

export class IndexChecks {
  /** The flag words every index-reading kernel binds; copied out and cleared with each readback. */
  readonly flags: GPUBuffer;
  private checksPending = false;
  private failure: IndexOutOfRangeError | null = null;
  private nextTag = 1;
  private readonly tags: (IndexTag | undefined)[] = new Array(INDEX_TAG_RING);

  /** `deviceName` (`llvmpipe#2`) labels the buffer and names the device in error messages. */
  constructor(
    gpuDevice: GPUDevice,
    private readonly deviceName: string,
  ) {
    this.flags = gpuDevice.createBuffer({
      size: INDEX_FLAG_BYTES,
      usage: STORAGE | COPY_SRC | COPY_DST,
      label: `${deviceName}:index-flags`,
    });
  }

  /** Whether index-checked kernels ran since the flags were last copied out (the next readback must carry them). */
  get pending(): boolean {
    return this.checksPending;
  }

  /** Registers a checked dispatch: the flag buffer to bind and the tag for its uniform (see Device.indexCheck). */
  register(op: IndexCheckedOp, describe: () => string): { flags: GPUBuffer; tag: number } {
    const tag = this.nextTag;
    this.nextTag = (this.nextTag + 1) >>> 0 || 1;
    this.tags[tag % INDEX_TAG_RING] = { tag, op, describe };
    this.checksPending = true;
    return { flags: this.flags, tag };
  }

  /** Encodes the copy of the flag words into `staging` at `offset` and their clearing, in the readback's submit. */
  copyOut(encoder: GPUCommandEncoder, staging: GPUBuffer, offset: number): void {
    encoder.copyBufferToBuffer(this.flags, 0, staging, offset, INDEX_FLAG_BYTES);
    encoder.clearBuffer(this.flags, 0, INDEX_FLAG_BYTES);
    this.checksPending = false;
  }

  /** Notes the flag words a readback brought back; the first failure is kept until taken. */
  noteReadback(words: Uint32Array): void {
    if (words[0] !== 0 && !this.failure) this.failure = this.error(words);
  }

  /** The IndexOutOfRangeError read back and not yet raised, cleared so it is raised once; null if none. */
  takeFailure(): IndexOutOfRangeError | null {
    const failure = this.failure;
    this.failure = null;
    return failure;
  }

  destroy(): void {
    this.flags.destroy();
  }

  private error(words: Uint32Array): IndexOutOfRangeError {
    const [count, tag, valueBits, bound, opCode] = words;
    const entry = this.tags[tag % INDEX_TAG_RING];
    const known = entry && entry.tag === tag ? entry : undefined;
    const op = known?.op ?? indexOpName(opCode);
    const value = valueBits | 0;
    const more = count > 1 ? ` (${count} out-of-range entries in all since the last readback)` : '';
    const detail = known ? ` ${known.describe()}` : '';
    return new IndexOutOfRangeError(
      `${op}: index ${value} is out of range [0, ${bound})${detail}${more}; raised at the first readback/sync after the op on device ${this.deviceName}`,
      op,
    );
  }
}
