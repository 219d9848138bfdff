/** @file The named error for optimiser and schedule settings outside their valid range. */
import { InvalidArgumentError } from '@metagrad/tensor';

/** A hyperparameter (lr, betas, eps, momentum, …) is invalid; the message names it and shows its value. */
export class InvalidHyperparameterError extends InvalidArgumentError {
  override name = 'InvalidHyperparameterError';
}

/** Throws unless `value` is a finite number ≥ `min` (and < `below` when given). */
export function checkNumber(where: string, name: string, value: number, min: number, below?: number): void {
  const ok = typeof value === 'number' && Number.isFinite(value) && value >= min && (below === undefined || value < below);
  if (!ok) {
    const range = below === undefined ? `≥ ${min}` : `in [${min}, ${below})`;
    throw new InvalidHyperparameterError(`${where}: ${name} must be a finite number ${range}, got ${String(value)}`);
  }
}

/** Throws unless `value` is a positive integer. */
export function checkPositiveInt(where: string, name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new InvalidHyperparameterError(`${where}: ${name} must be a positive integer, got ${String(value)}`);
  }
}
