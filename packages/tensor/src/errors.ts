/** @file Named error classes: every failure a user can cause or meet says what went wrong and where. */

/** Operand shapes do not fit the op; the message shows the shapes. */
export class ShapeError extends Error {
  override name = 'ShapeError';
}

/** Operand dtypes do not fit the op. */
export class DTypeError extends Error {
  override name = 'DTypeError';
}

/** A tensor was used after `dispose()` (or after its scope ended). */
export class DisposedTensorError extends Error {
  override name = 'DisposedTensorError';
}

/** The GPU device was lost (driver reset, destroy(), out of memory at the driver level). */
export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

/** A WGSL compilation or validation error, carrying the kernel's label (its structural key). */
export class KernelError extends Error {
  override name = 'KernelError';
  constructor(
    message: string,
    readonly kernel: string,
  ) {
    super(message);
  }
}

/** The device refused an allocation. */
export class OutOfMemoryError extends Error {
  override name = 'OutOfMemoryError';
  constructor(
    message: string,
    readonly requestedBytes: number,
  ) {
    super(message);
  }
}

/** No WebGPU adapter could be acquired; the message lists what was tried and what to install. */
export class NoAdapterError extends Error {
  override name = 'NoAdapterError';
  constructor(
    message: string,
    readonly tried: { name: string; error: string }[],
  ) {
    super(message);
  }
}

/** An argument value is out of its valid range (hyperparameters, options). */
export class InvalidArgumentError extends Error {
  override name = 'InvalidArgumentError';
}

/**
 * An index value (gather, indexSelect, scatterAdd, oneHot, a class label) is outside its dimension. Raised on the
 * host when the indices are host data, else at the next sync/readback from the GPU's bounds flag; `op` names the op.
 */
export class IndexOutOfRangeError extends InvalidArgumentError {
  override name = 'IndexOutOfRangeError';
  constructor(
    message: string,
    readonly op: string,
  ) {
    super(message);
  }
}

/** Operands of one op live on different devices; the message names each operand's device. */
export class DeviceMismatchError extends Error {
  override name = 'DeviceMismatchError';
}

/**
 * A tensor saved for backward was overwritten in place (an optimiser step, a copy into its storage) after the
 * graph recorded it; PyTorch raises the same ("modified by an inplace operation"). The message shows both versions.
 */
export class InPlaceModificationError extends Error {
  override name = 'InPlaceModificationError';
}

/**
 * `compile(fn)` cannot capture or replay `fn` faithfully: a readback inside it, a host value that changes between
 * calls (it would be frozen into the replay), tensors it leaves alive without returning them, or a tensor it reads
 * from its closure that has since been disposed. The message names the op, kernel or values.
 */
export class TraceError extends Error {
  override name = 'TraceError';
}
