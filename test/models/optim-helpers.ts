/** @file Shared pieces of the optimiser tests: the torch fixture, the tiny regression problem, and comparisons. */
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import * as raw from '@metagrad/tensor';
import type { Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';

export interface FixTensor {
  shape: number[];
  data: number[];
}

export interface Trajectory {
  name: string;
  kind: 'sgd' | 'adam' | 'adamw';
  options: {
    lr: number;
    momentum?: number;
    dampening?: number;
    nesterov?: boolean;
    weight_decay?: number;
    betas?: [number, number];
    eps?: number;
  };
  stepLR?: { stepSize: number; gamma: number };
  steps: { W: FixTensor; b: FixTensor }[];
}

export interface Hypergrad {
  name: string;
  lambda: number;
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  steps: number;
  valLoss: number;
  hypergrad: number;
  W: FixTensor;
  b: FixTensor;
}

export const fixture = JSON.parse(readFileSync(new URL('../fixtures/optim.json', import.meta.url), 'utf8')) as {
  problem: Record<'X' | 'Y' | 'Xval' | 'Yval' | 'W0' | 'b0', FixTensor>;
  trajectories: Trajectory[];
  schedules: Record<'stepLR' | 'cosine' | 'linearDecay', { options: Record<string, number>; values: number[] }>;
  hypergradients: Hypergrad[];
};

export const up = (f: FixTensor): Tensor => raw.tensor(f.data, f.shape);

export type Params = { W: Tensor; b: Tensor };

export interface Problem {
  X: Tensor;
  Y: Tensor;
  Xval: Tensor;
  Yval: Tensor;
  dispose(): void;
}

export function problem(): Problem {
  const p = fixture.problem;
  const t = { X: up(p.X), Y: up(p.Y), Xval: up(p.Xval), Yval: up(p.Yval) };
  return { ...t, dispose: () => raw.dispose(Object.values(t)) };
}

/** Fresh copies of the fixture's initial parameters. */
export const initParams = (): Params => ({ W: up(fixture.problem.W0), b: up(fixture.problem.b0) });

/** mean((X W + b − Y)²), differentiable. */
export function regressionLoss(p: Params, x: Tensor, y: Tensor): Tensor {
  return raw.tidy(() => ag.mse(ag.add(ag.matmul(x, p.W), p.b), y, 'mean'));
}

export async function expectClose(t: Tensor, want: FixTensor | number[], tol: number, what: string): Promise<void> {
  const data = Array.from(await t.toArray());
  const ref = Array.isArray(want) ? want : want.data;
  expect(data.length, what).toBe(ref.length);
  const worst = Math.max(...data.map((v, i) => Math.abs(v - ref[i]) / (tol + tol * Math.abs(ref[i]))));
  expect(worst, `${what}: ${data.slice(0, 4).join(', ')} vs ${ref.slice(0, 4).join(', ')}`).toBeLessThanOrEqual(1);
}
