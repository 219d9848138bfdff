/** @file Named errors of the data layer: a missing dataset (with the install hint) and a corrupt or malformed file. */

/** Debian's package that installs Fashion-MNIST under /usr/share/datasets/fashion-mnist/. */
export const FASHION_MNIST_PACKAGE = 'dataset-fashion-mnist';

/** A dataset's files are not where we looked; the message says where we looked and how to install them. */
export class DatasetNotFoundError extends Error {
  override name = 'DatasetNotFoundError';
  constructor(
    readonly dataset: string,
    readonly directory: string,
    readonly missing: readonly string[],
    hint: string,
  ) {
    super(`${dataset} not found in ${directory}: missing ${missing.join(', ')}. ${hint}`);
  }
}

/** A file was found but its bytes do not describe a valid dataset (bad magic, truncated, inconsistent counts). */
export class CorruptDatasetError extends Error {
  override name = 'CorruptDatasetError';
  constructor(
    message: string,
    readonly source?: string,
  ) {
    super(source ? `${source}: ${message}` : message);
  }
}
