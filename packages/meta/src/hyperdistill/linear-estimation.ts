/**
 * @file LinearEstimation (Algorithm 4): fits θ of c_γ(t; θ) = θ ‖v_t‖ S_t by least squares through the origin,
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
import { mulScalar, noGrad, reshape } from '@metagrad/autograd';
import { concat, InvalidArgumentError, tidy, type Tensor } from '@metagrad/tensor';
import { cloneTree, disposeTree, dotTree, Rng, type ParamTree } from '@metagrad/models';
import type { BilevelProblem } from '../hypergrad/types';
import { checkFinite } from '../hypergrad/common';
import { NonFiniteHypergradientError } from '../errors';
import { runInner, type InnerOptimiser } from '../episodic/inner';
import { lincombTree, mixedProducts, valGradients } from '../episodic/products';
import { interpolate, reverseHypergradient } from '../episodic/reverse';
import { distillBatch, MissingBatchOpsError, type BatchOps } from './batches';
import { decaySum, reverseMix } from './weights';

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
  const { problem, lambda, trainBatches: batches, gamma, optimiser } = input;
  const T = batches.length;
  const rng = input.rng ?? new Rng(0);
  const { wT } = await runInner({ problem, lambda: () => lambda, w0: input.initial, batches, optimiser });
  const { alpha, direct, loss } = valGradients(problem, wT, lambda, input.valBatch);
  disposeTree(direct);
  loss.dispose();
  let wStar: ParamTree | null = null;
  let dStar: { batch: Batch; owned: boolean } | null = null;
  const releaseBatch = (): void => {
    if (dStar?.owned) input.batchOps!.dispose(dStar.batch);
    dStar = null;
  };
  // Per s: ‖v_s‖² and v_s·g^SO_s as device scalars, read once at the end.
  const norms: Tensor[] = [];
  const dots: Tensor[] = [];
  let extraJvps = 0;
  try {
    const { gSO, jvps } = reverseHypergradient({
      problem,
      lambda,
      trainBatches: batches,
      lr: optimiser.lr,
      momentum: momentumJacobian === 'exact' ? optimiser.momentum : 0,
      alphaT: alpha,
      point: (t) => interpolate(input.initial, wT, t, T),
      release: (w, t) => {
        // ŵ_{t−1} = ŵ_{T−s} joins the distilled point before it is freed (eq. 17).
        const s = T - t + 1;
        const p = reverseMix(gamma, s);
        const next = s === 1 || !wStar ? cloneTree(w) : lincombTree(p, wStar, 1 - p, w);
        if (wStar) disposeTree(wStar);
        wStar = next;
        disposeTree(w);
        // D*_s from D_{T−s+1} = D_t (eq. 18); at γ = 0 (p = 1) D* stays D_T.
        const batch = batches[t - 1];
        if (s === 1 || !dStar) {
          releaseBatch();
          dStar = { batch, owned: false };
        } else if (p !== 1 && dStar.batch !== batch) {
          if (!input.batchOps) throw new MissingBatchOpsError('linearEstimation: the training batches differ between steps; pass batchOps (eq. 18)');
          const merged = distillBatch(input.batchOps, dStar.batch, batch, p, rng);
          releaseBatch();
          dStar = { batch: merged, owned: true };
        }
      },
      onHorizon: (s, g) => {
        const v = mixedProducts(problem, wStar!, lambda, dStar!.batch, alpha, { w: false, lambda: true }).lambda!;
        extraJvps++;
        // v_s = −η ∂_λ⟨α_T, ∇L_T(w*_s)⟩; η enters the scalars below, the sign here.
        noGrad(() => {
          const vv = dotTree(v, v);
          const vg = dotTree(v, g);
          norms.push(reshape(vv, [1]));
          const vg1 = reshape(vg, [1]);
          dots.push(mulScalar(vg1, -optimiser.lr));
          vg1.dispose();
          vv.dispose();
          vg.dispose();
        });
        disposeTree(v);
      },
    });
    disposeTree(gSO);
    const nv = tidy(() => concat(norms, 0));
    const dv = tidy(() => concat(dots, 0));
    const n2 = Array.from(await nv.toArray());
    const d = Array.from(await dv.toArray());
    nv.dispose();
    dv.dispose();
    // Read anyway for the fit: a NaN/Inf sample would make θ NaN and every later HyperDistill step NaN.
    const bad = n2.findIndex((v, i) => !Number.isFinite(v) || !Number.isFinite(d[i]));
    if (bad >= 0) {
      throw new NonFiniteHypergradientError(
        'linearEstimation',
        `at horizon s = ${bad + 1} of ${T}: ‖v_s‖² = ${n2[bad]}, v_s·g^SO_s = ${d[bad]} (inner lr ${optimiser.lr}, γ = ${gamma}); θ was not refitted`,
      );
    }
    const x: number[] = [];
    const y: number[] = [];
    for (let s = 1; s <= T; s++) {
      const norm = optimiser.lr * Math.sqrt(n2[s - 1]);
      x.push(norm * decaySum(gamma, s));
      y.push(norm > 0 ? d[s - 1] / norm : 0);
    }
    const xx = x.reduce((a, v) => a + v * v, 0);
    const xy = x.reduce((a, v, i) => a + v * y[i], 0);
    return { theta: xx > 0 ? xy / xx : 0, x, y, jvps: jvps + extraJvps, ms: performance.now() - t0 };
  } finally {
    disposeTree(alpha);
    disposeTree(wT);
    if (wStar) disposeTree(wStar);
    releaseBatch();
    norms.forEach((t) => t.dispose());
    dots.forEach((t) => t.dispose());
  }
}
