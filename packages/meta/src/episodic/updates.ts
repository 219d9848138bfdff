/** @file λ's updates during one inner optimisation: each hypergradient checked finite, applied by Adam, counted. */
/*
 * λ's side of an inner optimisation: every hypergradient is checked finite (its norm read with L_V) before
 * Adam applies it, so a NaN/Inf one leaves λ and Adam's state unchanged; the work and norms are counted.
 */
import { noGrad } from '@metagrad/autograd';
import { InvalidArgumentError } from '@metagrad/tensor';
import { normTree, type Adam, type ParamTree } from '@metagrad/models';
import type { HypergradResult } from '../hypergrad/types';
import { checkHypergradNorm, type CheckedHypergradResult } from '../core';

export class LambdaUpdates {
  jvps = 0;
  hvps = 0;
  updates = 0;
  private normSum = 0;

  /** For inner optimisation m of `method`, applying to λ through `adam`. */
  constructor(
    private readonly adam: Adam,
    private readonly method: string,
    private readonly m: number,
  ) {}

  /** λ ← Adam(λ, g) once ‖g‖ (read with L_V) is known to be finite; `where` names the step in the error. */
  apply(hypergrad: ParamTree, norm: number, valLoss: number, where: string, work: { jvps: number; hvps: number }): void {
    checkHypergradNorm(this.method, norm, valLoss, `${where} of inner optimisation ${this.m}`);
    this.adam.step(hypergrad);
    this.jvps += work.jvps;
    this.hvps += work.hvps;
    this.normSum += norm;
    this.updates++;
  }

  /** A method's result (or none): its norm as the method read it, else one readback here. */
  async applyResult(r: HypergradResult | null, where: string): Promise<void> {
    if (!r) return;
    const norm = (r as Partial<CheckedHypergradResult>).hypergradNorm ?? (await noGrad(() => normTree(r.hypergrad)).item());
    this.apply(r.hypergrad, norm, r.valLoss, where, r.stats);
  }

  /** Mean ‖hypergradient‖ over the updates (0 without any). */
  get meanNorm(): number {
    return this.updates ? this.normSum / this.updates : 0;
  }
}

/** λ's Adam learning rate, checked: finite and > 0 (the constructor's `hyperLr`, or a later `setHyperLr`). */
export function checkHyperLr(lr: number): number {
  if (!(Number.isFinite(lr) && lr > 0)) throw new InvalidArgumentError(`EpisodicTrainer: hyperLr must be > 0, got ${lr}`);
  return lr;
}
