/** @file Helpers shared by the optimisers: resolving number/schedule/tensor hyperparameters and scaling by them. */
import { ShapeError, Tensor } from '@metagrad/tensor';
import { mul, mulScalar } from '@metagrad/autograd';
import { checkNumber } from './errors';
import type { Hyper, Schedule } from './types';

/** A hyperparameter's value at `step`: numbers and schedule values are range-checked (≥ min), tensors must hold one element. */
export function resolveHyper(where: string, name: string, h: Hyper, step: number, min = 0): number | Tensor {
  if (h instanceof Tensor) {
    if (h.size !== 1) throw new ShapeError(`${where}: a tensor ${name} must hold one element, got [${h.shape.join(', ')}]`);
    return h;
  }
  const value = typeof h === 'function' ? (h as Schedule)(step) : h;
  checkNumber(where, typeof h === 'function' ? `${name} (schedule at step ${step})` : name, value, min);
  return value;
}

/** Validates a hyperparameter at construction (numbers only; schedules are checked when evaluated). */
export function checkHyper(where: string, name: string, h: Hyper, min = 0): void {
  if (typeof h === 'number' || h === undefined || h === null) checkNumber(where, name, h as number, min);
  else if (h instanceof Tensor) resolveHyper(where, name, h, 0, min);
  else if (typeof h !== 'function') checkNumber(where, name, h as unknown as number, min);
}

/** x·h, differentiable in both (a one-element tensor h broadcasts; its shape [] or [1] is flattened first). */
export function scaleBy(x: Tensor, h: number | Tensor): Tensor {
  if (typeof h === 'number') return mulScalar(x, h);
  return mul(x, h);
}

/** Whether a hyperparameter is the number zero (then its term is skipped, as torch does). */
export const isZero = (h: number | Tensor): boolean => typeof h === 'number' && h === 0;
