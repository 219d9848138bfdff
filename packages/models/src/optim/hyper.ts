/** @file Helpers shared by the optimisers: resolving number/schedule/tensor hyperparameters and scaling by them. */
import { DTypeError, InvalidArgumentError, ShapeError, Tensor } from '@metagrad/tensor';
import { mul, mulScalar } from '@metagrad/autograd';
import { leaves, type ParamTree } from '../params';
import { checkNumber, InvalidHyperparameterError } from './errors';
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

/** The learning rate and weight decay of an in-place optimiser class, which takes numbers or schedules only. */
export function inPlaceHypers(where: string, functional: string, options: { lr: Hyper; weightDecay?: Hyper }): { lr: number | Schedule; weightDecay: number } {
  if (typeof options.lr === 'object' || typeof options.weightDecay === 'object') {
    throw new InvalidHyperparameterError(`${where}: tensor hyperparameters need the functional ${functional}(); the in-place class takes numbers or schedules`);
  }
  return { lr: options.lr as number | Schedule, weightDecay: (options.weightDecay as number | undefined) ?? 0 };
}

/**
 * The gradient leaves of an in-place step, one per parameter and each the same shape as its parameter and f32, or
 * ShapeError/DTypeError (the fused kernels index both buffers alike). A gradient sharing storage with any parameter
 * (the parameter itself, a view, another leaf) is an InvalidArgumentError: the kernel would read what the step
 * writes (WebGPU rejects the binding; across leaves the result would depend on the order).
 */
export function stepGradients(where: string, params: readonly Tensor[], grads: ParamTree): Tensor[] {
  const gl = leaves(grads);
  if (gl.length !== params.length) throw new ShapeError(`${where}.step: got ${gl.length} gradients for ${params.length} parameters`);
  const written = new Map(params.map((p, i) => [p.storage, i]));
  params.forEach((p, i) => {
    const g = gl[i];
    const aliased = written.get(g.storage);
    if (aliased !== undefined) {
      throw new InvalidArgumentError(
        `${where}.step: gradient ${i} shares its storage with parameter ${aliased} (the parameter itself or a view of it), which the step overwrites; pass a copy`,
      );
    }
    if (p.dtype !== 'f32' || g.dtype !== 'f32')
      throw new DTypeError(`${where}.step: parameter ${i} is ${p.dtype} and its gradient ${g.dtype}; both must be f32`);
    if (p.rank !== g.rank || p.shape.some((d, k) => d !== g.shape[k])) {
      throw new ShapeError(`${where}.step: parameter ${i} is ${p.dtype}[${p.shape.join(', ')}] but its gradient is ${g.dtype}[${g.shape.join(', ')}]`);
    }
  });
  return gl;
}
