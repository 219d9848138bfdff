/**
 * @file GPU errors per submitted batch: each batch runs inside validation and out-of-memory error scopes, so a
 * failure is pinned to the batch that caused it; what it wrote, and what later work computed from that, is spoiled.
 */

/** One recorded command: its binding kinds ('read' | 'write' | 'uniform') and buffers (uniform slot omitted). */
interface Op {
  readonly bindings: readonly string[];
  readonly buffers: readonly GPUBuffer[];
}

const COPY_BINDINGS = ['read', 'write'] as const;

interface Batch {
  readonly id: number;
  /** Commands in record order, kept until the batch is known good (for dataflow after a failure). */
  readonly ops: Op[];
  error: GPUError | null;
  reported: boolean;
  done: boolean;
  settled: Promise<void>;
}

/** The first line of a Dawn message, as the reason a spoiled buffer shows. */
function firstLine(message: string): string {
  return message.split('\n')[0].trim();
}

/**
 * A failed batch runs none of its commands, so its outputs keep whatever the pool buffer held before: those
 * buffers are marked (with the error's first line), reading them throws, work reading them is marked too, and
 * the pool destroys them on release instead of handing them out again.
 */
export class BatchTracker {
  private current: Batch | null = null;
  private inFlight: Batch[] = [];
  private readonly spoiled = new WeakMap<GPUBuffer, string>();
  private readonly exempt = new WeakSet<GPUBuffer>();
  private anySpoiled = false;
  private nextId = 1;

  constructor(private readonly gpuDevice: GPUDevice) {}

  /** Device-owned buffers every batch may write (the index flag words): never marked. */
  exemptBuffer(buffer: GPUBuffer): void {
    this.exempt.add(buffer);
  }

  /** Starts a batch: called when a command encoder is created, before anything is recorded into it. */
  open(): void {
    this.gpuDevice.pushErrorScope('out-of-memory');
    this.gpuDevice.pushErrorScope('validation');
    this.current = {
      id: this.nextId++,
      ops: [],
      error: null,
      reported: false,
      done: false,
      settled: Promise.resolve(),
    };
  }

  /** Ends the batch after its submit (finish and submit errors land in its scopes). */
  close(): void {
    const batch = this.current;
    if (!batch) return;
    this.current = null;
    const validation = this.gpuDevice.popErrorScope();
    const oom = this.gpuDevice.popErrorScope();
    batch.settled = Promise.all([validation, oom]).then(
      ([v, o]) => this.finish(batch, v ?? o ?? null),
      () => this.finish(batch, null), // a lost device rejects; DeviceLostError reports that
    );
    this.inFlight.push(batch);
  }

  private finish(batch: Batch, error: GPUError | null): void {
    batch.error = error;
    batch.done = true;
    // Clean batches at the front can be forgotten: a later failure does not spoil what came before it.
    while (this.inFlight.length && this.inFlight[0].done && !this.inFlight[0].error) this.inFlight.shift();
  }

  /** Records a dispatch; work that reads a buffer already known spoiled spoils what it writes. */
  recordDispatch(bindings: readonly string[], buffers: readonly GPUBuffer[]): void {
    const batch = this.current;
    if (!batch) return;
    const op = { bindings, buffers };
    batch.ops.push(op);
    if (this.anySpoiled) this.propagate(op);
  }

  recordCopy(src: GPUBuffer, dst: GPUBuffer): void {
    this.recordDispatch(COPY_BINDINGS, [src, dst]);
  }

  /** Spoils the op's outputs if any buffer it binds is spoiled (an output's old content counts: it may be read). */
  private propagate(op: Op, reason?: string): void {
    let why = reason;
    let b = 0;
    for (const kind of op.bindings) {
      if (kind === 'uniform') continue;
      const buf = op.buffers[b++];
      if (why === undefined && !this.exempt.has(buf)) why = this.spoiled.get(buf);
    }
    if (why === undefined) return;
    b = 0;
    for (const kind of op.bindings) {
      if (kind === 'uniform') continue;
      const buf = op.buffers[b++];
      if (kind === 'write' && !this.exempt.has(buf)) this.mark(buf, why);
    }
  }

  /** Creates a buffer inside its own error scopes: an allocation failure marks it (and is passed to `onError`). */
  createBuffer(size: number, usage: number, onError: (err: GPUError) => void): GPUBuffer {
    this.gpuDevice.pushErrorScope('out-of-memory');
    this.gpuDevice.pushErrorScope('validation');
    const buffer = this.gpuDevice.createBuffer({ size, usage });
    const validation = this.gpuDevice.popErrorScope();
    const oom = this.gpuDevice.popErrorScope();
    void Promise.all([validation, oom]).then(
      ([v, o]) => {
        const err = v ?? o;
        if (!err) return;
        this.mark(buffer, firstLine(err.message));
        onError(err);
      },
      () => undefined,
    );
    return buffer;
  }

  /**
   * Waits for every submitted batch's scopes. If one failed, spoils everything it wrote (none of its commands ran),
   * then replays the later batches' dataflow in order so that work computed from those outputs is spoiled too, and
   * returns the first error; the caller reports it once.
   */
  async settle(): Promise<GPUError | null> {
    const waiting = this.inFlight.slice();
    if (waiting.length === 0) return null;
    await Promise.all(waiting.map((b) => b.settled));
    this.inFlight = this.inFlight.filter((b) => !waiting.includes(b));
    const first = waiting.findIndex((b) => b.error && !b.reported);
    if (first < 0) return null;
    const error = waiting[first].error!;
    const later = [...waiting.slice(first), ...this.inFlight, ...(this.current ? [this.current] : [])];
    for (const batch of later) {
      const failedReason = batch.error ? firstLine(batch.error.message) : undefined;
      for (const op of batch.ops) this.propagate(op, failedReason);
      // Two overlapping readbacks may both await this batch: the error is reported by the first only.
      if (batch.error) batch.reported = true;
    }
    return error;
  }

  private mark(buffer: GPUBuffer, reason: string): void {
    this.spoiled.set(buffer, reason);
    this.anySpoiled = true;
  }

  isSpoiled(buffer: GPUBuffer): boolean {
    return this.anySpoiled && this.spoiled.has(buffer);
  }

  /** Why a buffer's content cannot be trusted, or undefined. */
  spoiledReason(buffer: GPUBuffer): string | undefined {
    return this.anySpoiled ? this.spoiled.get(buffer) : undefined;
  }
}
