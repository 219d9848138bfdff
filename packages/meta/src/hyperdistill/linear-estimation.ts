/** @file LinearEstimation (Algorithm 4): θ of c_γ(t; θ) = θ‖v_t‖S_t by least squares along one DrMAD pass. */
/*
 * LinearEstimation (Algorithm 4): fits θ of c_γ(t; θ) = θ ‖v_t‖ S_t by least squares through the origin,
 * θ = xᵀy / xᵀx, from one inner optimisation at fixed λ and one DrMAD backward pass along it. After s backward
 * steps the partial second-order term is g^SO_s, the valid second-order term over the horizon s (eq. 16); the
 * distilled point w*_s and batch D*_s are built backwards (eq. 17, 18) over the interpolated weights, and
 *   v_s = α_T ∂Φ(w*_s, λ; D*_s)/∂λ,  x_s = ‖v_s‖ S_s,  y_s = σ(v_s)ᵀ g^SO_s.
 * Cost: the forward inner optimisation, 2T − 1 JVPs for DrMAD and T for the v_s; memory is constant in T.
 *
 * With a momentum optimiser the paper leaves open how momentum enters the Jacobians Â_t of the backward pass.
 * 'constant' (the default) holds the momentum buffer constant, Â_t = I − ηH_t, which is the Jacobian eq. 7's
 * Hessian-identity approximation is built on and the convention of the online v_t (whose B-product also holds the
 * buffer constant), so θ measures what eq. 15 models. 'exact' reverses through the heavy-ball dynamics; g^SO_s then
 * grows up to 1/(1 − μ) times faster with s than x_s does, and the least-squares θ is dominated by the long horizons.
 */
import { InvalidArgumentError, scope } from '@metagrad/tensor';
import { Rng, type ParamTree } from '@metagrad/models';
import type { BilevelProblem } from '../hypergrad/types';
import { checkFinite } from '../hypergrad/common';
import { NonFiniteHypergradientError } from '../errors';
import { runInner, valGradients, type BatchOps, type InnerOptimiser } from '../core';
import { distilledReverse } from './distilled-reverse';
import { decaySum } from './weights';

export interface LinearEstimationInput<Batch> {
  problem: BilevelProblem<ParamTree, ParamTree, Batch>;
  lambda: ParamTree;
  /** w_0 = φ (the initialisation). */
  initial: ParamTree;
  /** D_1 … D_T. */
  trainBatches: readonly Batch[];
  valBatch: Batch;
  optimiser: InnerOptimiser;
  gamma: number;
  /** How the optimiser's momentum enters the backward Jacobians (see the file header); default 'constant'. */
  momentumJacobian?: MomentumJacobian;
  batchOps?: BatchOps<Batch>;
  rng?: Rng;
}

/** 'constant': Â_t = I − ηH_t (momentum buffer held constant); 'exact': reverse through the heavy-ball dynamics. */
export type MomentumJacobian = 'constant' | 'exact';

export function checkMomentumJacobian(where: string, value: unknown): MomentumJacobian {
  if (value === undefined) return 'constant';
  if (value === 'constant' || value === 'exact') return value;
  throw new InvalidArgumentError(`${where}: momentumJacobian must be 'constant' or 'exact', got ${JSON.stringify(value)}`);
}

export interface LinearEstimationResult {
  theta: number;
  /** x_s and y_s for s = 1 … T. */
  x: number[];
  y: number[];
  jvps: number;
  ms: number;
}

export async function linearEstimation<Batch>(input: LinearEstimationInput<Batch>): Promise<LinearEstimationResult> {
  checkFinite('linearEstimation', 'gamma', input.gamma, (v) => v >= 0 && v <= 1, 'in [0, 1]');
  const momentumJacobian = checkMomentumJacobian('linearEstimation', input.momentumJacobian);
  const t0 = performance.now();
  const { problem, lambda, trainBatches, gamma, optimiser } = input;
  return scope(async () => {
    const { wT } = await runInner({
      problem,
      lambda: () => lambda,
      w0: input.initial,
      batches: trainBatches,
      optimiser,
    });
    const { alpha } = valGradients(problem, wT, lambda, input.valBatch);
    const samples = distilledReverse({
      problem,
      lambda,
      w0: input.initial,
      wT,
      alphaT: alpha,
      trainBatches,
      lr: optimiser.lr,
      gamma,
      batchOps: input.batchOps,
      rng: input.rng ?? new Rng(0),
      momentum: momentumJacobian === 'exact' ? optimiser.momentum : 0,
    });
    const n2 = Array.from(await samples.norms.toArray());
    const d = Array.from(await samples.dots.toArray());
    // Read anyway for the fit: a NaN/Inf sample would make θ NaN and every later HyperDistill step NaN.
    const bad = n2.findIndex((v, i) => !Number.isFinite(v) || !Number.isFinite(d[i]));
    if (bad >= 0) {
      throw new NonFiniteHypergradientError(
        'linearEstimation',
        `at horizon s = ${bad + 1} of ${trainBatches.length}: ‖v_s‖² = ${n2[bad]}, v_s·g^SO_s = ${d[bad]} (inner lr ${optimiser.lr}, γ = ${gamma}); θ was not refitted`,
      );
    }
    // x_s = ‖v_s‖ S_s, y_s = σ(v_s)ᵀ g^SO_s, θ = xᵀy / xᵀx.
    const norm = n2.map((v) => optimiser.lr * Math.sqrt(v));
    const x = norm.map((n, i) => n * decaySum(gamma, i + 1));
    const y = norm.map((n, i) => (n > 0 ? d[i] / n : 0));
    const xx = x.reduce((a, v) => a + v * v, 0);
    const xy = x.reduce((a, v, i) => a + v * y[i], 0);
    return { theta: xx > 0 ? xy / xx : 0, x, y, jvps: samples.jvps, ms: performance.now() - t0 };
  });
}
