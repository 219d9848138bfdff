/** @file Learning-rate schedules as plain functions of the step (0-based), matching torch's closed forms. */
import { checkNumber, checkPositiveInt } from './errors';
import type { Schedule } from './types';

/** torch StepLR: lr·γ^floor(step / stepSize). */
export function stepLR(o: { lr: number; stepSize: number; gamma?: number }): Schedule {
  const gamma = o.gamma ?? 0.1;
  checkNumber('stepLR', 'lr', o.lr, 0);
  checkPositiveInt('stepLR', 'stepSize', o.stepSize);
  checkNumber('stepLR', 'gamma', gamma, 0);
  return (step) => o.lr * gamma ** Math.floor(Math.max(0, step) / o.stepSize);
}

/** Linear from `lr` at step 0 to `endLr` (default 0) at `steps`, constant afterwards (torch LinearLR's shape). */
export function linearDecay(o: { lr: number; steps: number; endLr?: number }): Schedule {
  const end = o.endLr ?? 0;
  checkNumber('linearDecay', 'lr', o.lr, 0);
  checkNumber('linearDecay', 'endLr', end, 0);
  checkPositiveInt('linearDecay', 'steps', o.steps);
  return (step) => o.lr + ((end - o.lr) * Math.min(Math.max(step, 0), o.steps)) / o.steps;
}

/** Cosine annealing from `lr` to `minLr` (default 0) over `steps`, constant afterwards (torch CosineAnnealingLR, T_max = steps). */
export function cosine(o: { lr: number; steps: number; minLr?: number }): Schedule {
  const min = o.minLr ?? 0;
  checkNumber('cosine', 'lr', o.lr, 0);
  checkNumber('cosine', 'minLr', min, 0);
  checkPositiveInt('cosine', 'steps', o.steps);
  return (step) => min + ((o.lr - min) * (1 + Math.cos((Math.PI * Math.min(Math.max(step, 0), o.steps)) / o.steps))) / 2;
}
