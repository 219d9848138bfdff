/** @file DrMAD, Reverse-HG and HyperDistill against exact unrolled hypergradients; γ = 0 against the one-step look-ahead bit for bit. */
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, tensor, tidy, type Device, type Tensor } from '@metagrad/tensor';
import { add, addScalar, exp, expectNoLeaks, matmul, mul, mulScalar, reshape, slice, square, sub, sum } from '@metagrad/autograd';
import { disposeTree, mlp, Rng, sgd, type ParamTree } from '@metagrad/models';
import {
  DrMAD,
  HyperDistill,
  MissingBatchOpsError,
  MissingTrajectoryError,
  OneStepLookahead,
  ReverseHG,
  UnrolledRMD,
  anilProblem,
  decaySum,
  distilledCounts,
  linearEstimation,
  onlineMix,
  regressionBatchOps,
  reverseMix,
  runInner,
  treeToVector,
  type BilevelProblem,
  type HypergradEstimator,
  type HypergradInput,
  type RegressionBatch,
} from '@metagrad/meta';
import { useDevice, withFusion } from '../helpers/device';

const getDevice = useDevice();

async function vec(est: HypergradEstimator<any>, input: HypergradInput<ParamTree, ParamTree, any>): Promise<Float64Array> {
  // eslint-disable-line @typescript-eslint/no-explicit-any
  const r = await est.estimate(input);
  const v = await treeToVector(r.hypergrad);
  disposeTree(r.hypergrad);
  return v;
}
/** One unit in the last place of a float32 of magnitude |x| (normal range). */
const f32Ulp = (x: number): number => 2 ** (Math.floor(Math.log2(Math.max(Math.abs(x), 2 ** -126))) - 23);
/** The largest difference between `a` and `b`, in float32 ulps of b's largest entry (the vector's own scale). */
const ulpsOfLargest = (a: Float64Array, b: Float64Array): number => Math.max(...a.map((x, i) => Math.abs(x - b[i]))) / f32Ulp(Math.max(...b.map(Math.abs)));
/**
 * Bit for bit with fusion off. With lazy fusion on, the same formulas fuse into different kernels (FMA contraction
 * differs): measured at most 2 ulps of the largest entry (so more for a small entry) on llvmpipe; the bound is 4
 * ulps of the largest entry, ~5e-7 relative, far below what a wrong formula gives.
 */
function expectSameHypergrad(got: Float64Array, want: Float64Array, fusion: boolean): void {
  if (!fusion) expect(Array.from(got)).toEqual(Array.from(want));
  else expect(ulpsOfLargest(got, want)).toBeLessThanOrEqual(4);
}
const relErr = (a: Float64Array, b: Float64Array): number => Math.max(...a.map((x, i) => Math.abs(x - b[i]))) / Math.max(...b.map(Math.abs));

// A loss whose plain-SGD path from w_2 = 0 is a straight line (∇ is constant along it) while the Hessian varies
// along the path: L_T = λ1² w1 + λ2 λ3 w2 + ½ w2² (1 + w1²), with λ3 = 0 so w2 stays 0 but ∂_λ∇L_T has a w2 row.
const pathProblem: BilevelProblem<ParamTree, ParamTree, null> = {
  trainLoss: (w, l) =>
    tidy(() => {
      const [w1, w2] = [slice(w as Tensor, [0], [1]), slice(w as Tensor, [1], [2])];
      const lt = l as Tensor;
      const [l1, l2, l3] = [slice(lt, [0], [1]), slice(lt, [1], [2]), slice(lt, [2], [3])];
      const a = mul(square(l1), w1);
      const b = mul(mul(l2, l3), w2);
      const c = mulScalar(mul(square(w2), addScalar(square(w1), 1)), 0.5);
      return sum(add(add(a, b), c));
    }),
  valLoss: (w, l) =>
    tidy(() => add(sum(square(sub(w as Tensor, tensor([0.2, 1], [2], 'f32', (w as Tensor).device)))), mulScalar(sum(square(l as Tensor)), 0.1))),
};

function pathInput(device: Device, w0: number[], momentum: number, T = 6) {
  const initial = tensor(w0, [2], 'f32', device);
  const lambda = tensor([0.8, 1.5, 0], [3], 'f32', device);
  const batches = Array.from({ length: T }, () => null);
  return { initial, lambda, batches, momentum, lr: 0.1, dispose: () => disposeTree([initial, lambda]) };
}

async function trajectoryInputs(p: ReturnType<typeof pathInput>) {
  const run = await runInner({
    problem: pathProblem,
    lambda: () => p.lambda,
    w0: p.initial,
    batches: p.batches,
    optimiser: { lr: p.lr, momentum: p.momentum },
    keepTrajectory: true,
  });
  const input = {
    problem: pathProblem,
    theta: run.wT,
    initial: p.initial,
    trajectory: run.trajectory,
    lambda: p.lambda,
    trainBatch: null,
    trainBatches: p.batches,
    valBatch: null,
    innerLr: p.lr,
    momentum: p.momentum,
  };
  const unrolled = {
    problem: pathProblem,
    theta: p.initial,
    lambda: p.lambda,
    trainBatch: null,
    trainBatches: p.batches,
    valBatch: null,
    innerLr: p.lr,
  };
  return { input, unrolled, dispose: () => disposeTree([run.wT, ...run.trajectory]) };
}

describe('DrMAD and Reverse-HG', () => {
  it('Reverse-HG equals autograd through the unroll, with and without momentum; DrMAD equals it on a linear trajectory only', async () => {
    const device = getDevice();
    for (const momentum of [0, 0.9]) {
      const p = pathInput(device, [1, 0.4], momentum);
      const t = await trajectoryInputs(p);
      const exact = await vec(new UnrolledRMD({ steps: p.batches.length, optimizer: sgd({ lr: p.lr, momentum }) }), t.unrolled);
      expect(relErr(await vec(new ReverseHG(), t.input), exact)).toBeLessThan(1e-5);
      // w2(0) ≠ 0: the path curves and the interpolation misses the Hessian along it.
      expect(relErr(await vec(new DrMAD(), t.input), exact)).toBeGreaterThan(1e-3);
      t.dispose();
      p.dispose();
    }
    const p = pathInput(device, [1, 0], 0);
    const t = await trajectoryInputs(p);
    const exact = await vec(new UnrolledRMD({ steps: p.batches.length }), t.unrolled);
    const drmad = await vec(new DrMAD(), t.input);
    expect(relErr(drmad, exact)).toBeLessThan(1e-5);
    expect(Math.abs(exact[2])).toBeGreaterThan(0.05); // the w2 row matters: the check is not vacuous
    t.dispose();
    p.dispose();
  });

  it('counts 2T − 1 JVPs and names missing inputs', async () => {
    const p = pathInput(getDevice(), [1, 0], 0);
    const t = await trajectoryInputs(p);
    const r = await new DrMAD().estimate(t.input);
    expect(r.stats.jvps).toBe(2 * p.batches.length - 1);
    disposeTree(r.hypergrad);
    expect(() => new DrMAD().estimate({ ...t.input, initial: undefined as never })).toThrow(MissingTrajectoryError);
    expect(() => new ReverseHG().estimate({ ...t.input, trajectory: [] })).toThrow(MissingTrajectoryError);
    expect(() => new DrMAD().estimate({ ...t.input, momentum: 1 })).toThrow(InvalidArgumentError);
    t.dispose();
    p.dispose();
  });
});

// A small ANIL problem: 3 tasks × 5 examples, features 1 → 8 (tanh), one linear head per task.
const features = mlp({ sizes: [1, 8], activation: 'tanh', outputActivation: 'tanh' });
const anil = anilProblem({ features: (l, x) => features.apply(l as never, x) });

function anilSetup(device: Device, seed = 1) {
  const rng = new Rng(seed);
  const B = 3;
  const n = 5;
  const mk = (): RegressionBatch => {
    const x = rng.uniformArray(B * n, -2, 2);
    return {
      x: tensor(x, [B, n, 1], 'f32', device),
      y: tensor(
        x.map((v, i) => Math.sin(v + (i % B))),
        [B, n, 1],
        'f32',
        device,
      ),
    };
  };
  const lambda = features.init(seed, device) as unknown as ParamTree;
  const phi = {
    weight: tensor(rng.uniformArray(8, -0.3, 0.3), [1, 8, 1], 'f32', device),
    bias: tensor([0.1], [1, 1, 1], 'f32', device),
  };
  const w0 = anil.initialWeights(phi, B);
  const train = [mk(), mk(), mk(), mk()];
  const val = mk();
  return {
    lambda,
    w0,
    train,
    val,
    dispose: () => {
      disposeTree([lambda, phi, w0] as ParamTree);
      for (const b of [...train, val]) regressionBatchOps.dispose(b);
    },
  };
}

// A coupled quadratic for HyperDistill against the paper's formulas: L_T = ½ Σ e^λ ⊙ (w − c)² + ½ (w − c)ᵀK(w − c)
// (Hessian diag(e^λ) + K, ∂_λ⟨a, ∇_wL_T⟩ = a ⊙ e^λ ⊙ (w − c), which depends on w), L_V = ½‖w − d‖² + κ‖λ‖².
const DQ = {
  c: [1, -0.5, 0.25],
  d: [0.2, 0.4, -0.3],
  K: [
    [0.5, 0.2, 0],
    [0.2, 0.3, 0.1],
    [0, 0.1, 0.4],
  ],
  kappa: 0.05,
  w0: [-0.4, 0.8, 0.1],
  lambda: [0.3, -0.2, 0.5],
  lr: 0.1,
  gamma: 0.9,
  theta: 0.7,
  T: 5,
};
const distillProblem: BilevelProblem<ParamTree, ParamTree, null> = {
  trainLoss: (w, l) =>
    tidy(() => {
      const device = (w as Tensor).device;
      const r = sub(w as Tensor, tensor(DQ.c, [3], 'f32', device));
      const rr = reshape(r, [3, 1]);
      const quad = sum(mul(rr, matmul(tensor(DQ.K.flat(), [3, 3], 'f32', device), rr)));
      return mulScalar(add(sum(mul(exp(l as Tensor), square(r))), quad), 0.5);
    }),
  valLoss: (w, l) =>
    tidy(() => {
      const fit = mulScalar(sum(square(sub(w as Tensor, tensor(DQ.d, [3], 'f32', (w as Tensor).device)))), 0.5);
      return add(fit, mulScalar(sum(square(l as Tensor)), DQ.kappa));
    }),
};

/**
 * HyperDistill on DQ in float64, written from the paper (Lee et al. 2022) rather than from the implementation:
 * plain SGD w_t = w_{t−1} − η∇L_T; online (Algorithm 3) w*_t = Σ_{i=1}^t γ^{t−i} w_{i−1} / S_t (eq. 12, the explicit
 * sum rather than the recursion 13), v_t = α_t ∂Φ(w*_t)/∂λ = −η α_t ⊙ e^λ ⊙ (w*_t − c) with α_t = ∇_wL_V(w_t), and
 * g_t = ∂_λL_V + θ S_t v_t (eq. 15: π* f = θ‖v_t‖S_t · v_t/‖v_t‖). The fit (Algorithm 4): DrMAD backward over
 * ŵ_{t−1} = (1 − (t−1)/T) w_0 + ((t−1)/T) w_T with g^SO += α B̂_t, α ← α Â_t (eq. 16); w*_s the γ-weighted
 * average of ŵ_{T−1}, …, ŵ_{T−s} (eq. 17, explicit); v_s = −η α_T ⊙ e^λ ⊙ (w*_s − c), x_s = ‖v_s‖ S_s,
 * y_s = σ(v_s)ᵀ g^SO_s, θ = xᵀy / xᵀx.
 */
function hyperDistillOnHost(): { online: number[][]; x: number[]; y: number[]; theta: number } {
  const { c, d, K, kappa, lambda, lr, gamma, theta, T } = DQ;
  const e = lambda.map(Math.exp);
  const hess = (a: number[]) => a.map((ai, i) => e[i] * ai + K[i].reduce((s, k, j) => s + k * a[j], 0));
  const grad = (w: number[]) => hess(w.map((wi, i) => wi - c[i]));
  const bProduct = (a: number[], w: number[]) => a.map((ai, i) => ai * e[i] * (w[i] - c[i])); // ∂_λ⟨a, ∇_wL_T(w)⟩
  const S = (t: number) => Array.from({ length: t }, (_, i) => gamma ** i).reduce((a, b) => a + b, 0);
  const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const traj = [DQ.w0];
  for (let t = 1; t <= T; t++) traj.push(traj[t - 1].map((wi, i) => wi - lr * grad(traj[t - 1])[i]));
  const online: number[][] = [];
  for (let t = 1; t <= T; t++) {
    const wStar = [0, 1, 2].map((j) => Array.from({ length: t }, (_, i) => gamma ** (t - 1 - i) * traj[i][j]).reduce((a, b) => a + b, 0) / S(t));
    const alpha = traj[t].map((wi, i) => wi - d[i]);
    const v = bProduct(alpha, wStar).map((x) => -lr * x);
    online.push(lambda.map((l, i) => 2 * kappa * l + theta * S(t) * v[i]));
  }
  const wT = traj[T];
  const hat = (k: number) => DQ.w0.map((w0i, i) => (1 - k / T) * w0i + (k / T) * wT[i]); // ŵ_k
  const alphaT = wT.map((wi, i) => wi - d[i]);
  let a = [...alphaT];
  let gSO = [0, 0, 0];
  const x: number[] = [];
  const y: number[] = [];
  for (let t = T; t >= 1; t--) {
    const w = hat(t - 1);
    const cvec = a.map((ai) => -lr * ai);
    gSO = gSO.map((g, i) => g + bProduct(cvec, w)[i]);
    a = a.map((ai, i) => ai + hess(cvec)[i]);
    const s = T - t + 1;
    const wStar = [0, 1, 2].map((j) => Array.from({ length: s }, (_, i) => gamma ** i * hat(T - 1 - i)[j]).reduce((p, q) => p + q, 0) / S(s));
    const v = bProduct(alphaT, wStar).map((q) => -lr * q);
    x.push(norm(v) * S(s));
    y.push(v.reduce((acc, vi, i) => acc + vi * gSO[i], 0) / norm(v));
  }
  const xx = x.reduce((acc, v) => acc + v * v, 0);
  const xy = x.reduce((acc, v, i) => acc + v * y[i], 0);
  return { online, x, y, theta: xy / xx };
}

describe('HyperDistill', () => {
  it('weights: S_t, eq. 13 and eq. 17 give the γ-weighted average; γ = 0 keeps only the newest point', () => {
    expect(decaySum(0.9, 3)).toBeCloseTo(1 + 0.9 + 0.81, 12);
    expect(decaySum(1, 4)).toBe(4);
    expect(onlineMix(0, 5)).toBe(0);
    expect(reverseMix(0, 5)).toBe(1);
    // Running eq. 13 reproduces eq. 12's weights on w_0 … w_3.
    const g = 0.7;
    let wts = [1];
    for (let t = 2; t <= 4; t++) {
      const p = onlineMix(g, t);
      wts = [...wts.map((x) => x * p), 1 - p];
    }
    const S = decaySum(g, 4);
    wts.forEach((x, i) => expect(x).toBeCloseTo(g ** (3 - i) / S, 12));
    expect(distilledCounts(10, 10, 0.45)).toEqual({ fromPrevious: 5, fromNew: 5 });
    expect(distilledCounts(10, 10, 0)).toEqual({ fromPrevious: 0, fromNew: 10 });
  });

  // γ = 0 makes HyperDistill's ψ = w_t + 0·(Φ − detach Φ) have OneStepLookahead's value and λ-gradient: bit for bit
  // when every op dispatches eagerly. With lazy fusion on, the two graphs (and a pending w_t from the caller) are
  // fused into different kernels, where the shader compiler contracts a·b + c into an FMA in one and not the other.
  it.each([false, true])(
    'γ = 0 with θ = 1 equals OneStepLookahead over several steps, bit for bit eagerly, within 4 ulps fused (fusion on: %s)',
    async (fusion) => {
      const device = getDevice();
      await withFusion(device, fusion, async () => {
        const s = anilSetup(device);
        const hd = new HyperDistill<RegressionBatch>({ gamma: 0, estimationPeriod: 1, theta: 1 });
        const oneStep = new OneStepLookahead<RegressionBatch>();
        let w: ParamTree = s.w0;
        for (let t = 0; t < s.train.length; t++) {
          const input = {
            problem: anil,
            theta: w,
            lambda: s.lambda,
            trainBatch: s.train[t],
            valBatch: s.val,
            innerLr: 0.05,
          };
          const a = await vec(oneStep, input);
          const b = await vec(hd, input);
          expectSameHypergrad(b, a, fusion);
          const run = await runInner({
            problem: anil,
            lambda: () => s.lambda,
            w0: w,
            batches: [s.train[t]],
            optimiser: { lr: 0.05, momentum: 0 },
          });
          // The caller's own step (functional sgd) as `next` gives the same hypergradient too.
          const c = await vec(hd, { ...input, theta: w, next: run.wT } as never);
          if (w !== s.w0) disposeTree(w);
          w = run.wT;
          expectSameHypergrad(c, a, fusion);
          // At γ = 0 the state is w* = w_{t−1}, D* = D_t: start afresh for the next comparison.
          hd.reset();
        }
        if (w !== s.w0) disposeTree(w);
        hd.dispose();
        s.dispose();
      });
    },
  );

  it('γ > 0 distils the trajectory: differs from 1-step, one JVP per step; LinearEstimation fits θ every period', async () => {
    const device = getDevice();
    const s = anilSetup(device);
    const hd = new HyperDistill<RegressionBatch>({ gamma: 0.9, estimationPeriod: 2, batchOps: regressionBatchOps });
    expect(hd.shouldEstimate(1)).toBe(true);
    expect(hd.shouldEstimate(2)).toBe(false);
    expect(hd.shouldEstimate(3)).toBe(true);
    const fit = await hd.fit({
      problem: anil,
      lambda: s.lambda,
      initial: s.w0,
      trainBatches: s.train,
      valBatch: s.val,
      optimiser: { lr: 0.05, momentum: 0.9 },
    });
    expect(fit.x).toHaveLength(s.train.length);
    expect(fit.jvps).toBe(3 * s.train.length - 1);
    expect(Number.isFinite(fit.theta)).toBe(true);
    expect(hd.theta).toBe(fit.theta);
    hd.reset();
    let w: ParamTree = s.w0;
    let differs = false;
    for (let t = 0; t < s.train.length; t++) {
      const input = {
        problem: anil,
        theta: w,
        lambda: s.lambda,
        trainBatch: s.train[0],
        valBatch: s.val,
        innerLr: 0.05,
      };
      const r = await hd.estimate(input);
      expect(r.stats.jvps).toBe(1);
      const a = await treeToVector(r.hypergrad);
      disposeTree(r.hypergrad);
      const b = await vec(new OneStepLookahead(), input);
      if (t > 0 && relErr(a, b) > 1e-3) differs = true;
      const run = await runInner({
        problem: anil,
        lambda: () => s.lambda,
        w0: w,
        batches: [s.train[0]],
        optimiser: { lr: 0.05, momentum: 0 },
      });
      if (w !== s.w0) disposeTree(w);
      w = run.wT;
    }
    expect(differs).toBe(true);
    if (w !== s.w0) disposeTree(w);
    hd.dispose();
    s.dispose();
  });

  it('γ > 0 online estimates (eqs. 12, 15) and the LinearEstimation fit (Algorithm 4, eqs. 16, 17) equal a float64 host computation', async () => {
    const device = getDevice();
    const hostRun = hyperDistillOnHost();
    const initial = tensor(DQ.w0, [3], 'f32', device);
    const lambda = tensor(DQ.lambda, [3], 'f32', device);
    const batches = Array.from({ length: DQ.T }, () => null);
    // Online, with θ fixed: g_t = ∂_λL_V(w_t) + θ·S_t·v_t at the distilled w*_t, for every step t.
    const hd = new HyperDistill<null>({ gamma: DQ.gamma, estimationPeriod: 1, theta: DQ.theta });
    let w: Tensor = initial;
    let worstOnline = 0;
    for (let t = 1; t <= DQ.T; t++) {
      const got = await vec(hd, {
        problem: distillProblem,
        theta: w,
        lambda,
        trainBatch: null,
        valBatch: null,
        innerLr: DQ.lr,
      });
      worstOnline = Math.max(worstOnline, relErr(got, Float64Array.from(hostRun.online[t - 1])));
      const run = await runInner({
        problem: distillProblem,
        lambda: () => lambda,
        w0: w,
        batches: [null],
        optimiser: { lr: DQ.lr, momentum: 0 },
      });
      if (w !== initial) w.dispose();
      w = run.wT as Tensor;
    }
    if (w !== initial) w.dispose();
    // The fit: samples x_s, y_s and θ = xᵀy / xᵀx.
    const fitter = new HyperDistill<null>({ gamma: DQ.gamma, estimationPeriod: 1 });
    const fit = await fitter.fit({
      problem: distillProblem,
      lambda,
      initial,
      trainBatches: batches,
      valBatch: null,
      optimiser: { lr: DQ.lr, momentum: 0 },
    });
    const worstX = relErr(Float64Array.from(fit.x), Float64Array.from(hostRun.x));
    const worstY = relErr(Float64Array.from(fit.y), Float64Array.from(hostRun.y));
    const thetaErr = Math.abs(fit.theta - hostRun.theta) / Math.abs(hostRun.theta);
    // Measured (llvmpipe and SwiftShader alike): online 3.5e-7, x 2.6e-7, y 4.5e-7, θ (= 0.887) 1.2e-7; tolerance 4e-6.
    expect(worstOnline).toBeLessThan(4e-6);
    expect(worstX).toBeLessThan(4e-6);
    expect(worstY).toBeLessThan(4e-6);
    expect(thetaErr).toBeLessThan(4e-6);
    hd.dispose();
    fitter.dispose();
    disposeTree([initial, lambda]);
  });

  it('LinearEstimation: θ = 1 at γ = 1 when the Jacobians are constant (g^SO_s = s·αB, v_s = αB)', async () => {
    const device = getDevice();
    // L_T = Σ λ² ⊙ w is linear in w: A = I, B = −η·2λ, constant along any path.
    const linear: BilevelProblem<ParamTree, ParamTree, null> = {
      trainLoss: (w, l) => tidy(() => sum(mul(square(l as Tensor), w as Tensor))),
      valLoss: (w) => tidy(() => sum(square(w as Tensor))),
    };
    const lambda = tensor([0.5, -1, 2], [3], 'f32', device);
    const w0 = tensor([1, 2, -1], [3], 'f32', device);
    const fit = await linearEstimation({
      problem: linear,
      lambda,
      initial: w0,
      trainBatches: [null, null, null, null],
      valBatch: null,
      optimiser: { lr: 0.1, momentum: 0 },
      gamma: 1,
    });
    expect(fit.theta).toBeCloseTo(1, 5);
    // Momentum held constant in the Jacobians (the default) still sees g^SO_s = s·αB; reversing through the
    // heavy-ball dynamics adds the momentum's carry-over, so θ grows.
    const opts = {
      problem: linear,
      lambda,
      initial: w0,
      trainBatches: [null, null, null, null],
      valBatch: null,
      optimiser: { lr: 0.1, momentum: 0.9 },
      gamma: 1,
    };
    expect((await linearEstimation(opts)).theta).toBeCloseTo(1, 5);
    expect((await linearEstimation({ ...opts, momentumJacobian: 'constant' })).theta).toBeCloseTo(1, 5);
    const exact = await linearEstimation({ ...opts, momentumJacobian: 'exact' });
    // s-step carry-over Σ_k (1 − μ^k)/(1 − μ) / s: θ = Σ x_s y_s / Σ x_s² with x_s ∝ s.
    const carry = [1, 2, 3, 4].map((s) => Array.from({ length: s }, (_, k) => (1 - 0.9 ** (k + 1)) / 0.1).reduce((a, b) => a + b, 0));
    const expected = carry.reduce((a, c, i) => a + c * (i + 1), 0) / [1, 2, 3, 4].reduce((a, s) => a + s * s, 0);
    expect(exact.theta).toBeCloseTo(expected, 4);
    await expect(linearEstimation({ ...opts, momentumJacobian: 'both' as never })).rejects.toThrow(/momentumJacobian.*both/);
    expect(() => new HyperDistill({ gamma: 0.9, estimationPeriod: 5, momentumJacobian: 'x' as never })).toThrow(InvalidArgumentError);
    disposeTree([lambda, w0]);
  });

  it('builds the distilled batch when D_t changes (eq. 14) and needs batchOps for it', async () => {
    const device = getDevice();
    const s = anilSetup(device);
    const input = (t: number) => ({
      problem: anil,
      theta: s.w0,
      lambda: s.lambda,
      trainBatch: s.train[t],
      valBatch: s.val,
      innerLr: 0.05,
    });
    const bare = new HyperDistill<RegressionBatch>({ gamma: 0.9, estimationPeriod: 50, theta: 1 });
    disposeTree((await bare.estimate(input(0))).hypergrad);
    await expect(bare.estimate(input(1))).rejects.toThrow(MissingBatchOpsError);
    bare.dispose();
    const hd = new HyperDistill<RegressionBatch>({
      gamma: 0.9,
      estimationPeriod: 50,
      theta: 1,
      batchOps: regressionBatchOps,
      seed: 3,
    });
    await expectNoLeaks(async () => {
      for (let t = 0; t < 4; t++) disposeTree((await hd.estimate(input(t))).hypergrad);
      hd.reset();
    }, device);
    const b = regressionBatchOps.subsample(s.train[0], 3, new Rng(1));
    expect(b.x.shape).toEqual([3, 3, 1]);
    regressionBatchOps.dispose(b);
    s.dispose();
  });

  it('rejects invalid settings with named errors', () => {
    expect(() => new HyperDistill({ gamma: 1.5, estimationPeriod: 50 })).toThrow(/gamma.*1\.5/);
    expect(() => new HyperDistill({ gamma: -0.1, estimationPeriod: 50 })).toThrow(InvalidArgumentError);
    expect(() => new HyperDistill({ gamma: 0.9, estimationPeriod: 0 })).toThrow(/estimationPeriod.*0/);
    expect(() => new HyperDistill({ gamma: 0.9, estimationPeriod: 5, theta: NaN })).toThrow(InvalidArgumentError);
    expect(() => new HyperDistill({ gamma: 0.9, estimationPeriod: 5 }).shouldEstimate(0)).toThrow(InvalidArgumentError);
  });

  it('frees everything: fit, online steps, DrMAD', async () => {
    const device = getDevice();
    const s = anilSetup(device);
    const hd = new HyperDistill<RegressionBatch>({ gamma: 0.99, estimationPeriod: 1, batchOps: regressionBatchOps });
    await expectNoLeaks(async () => {
      await hd.fit({
        problem: anil,
        lambda: s.lambda,
        initial: s.w0,
        trainBatches: s.train,
        valBatch: s.val,
        optimiser: { lr: 0.05, momentum: 0.9 },
      });
      hd.reset();
      const run = await runInner({
        problem: anil,
        lambda: () => s.lambda,
        w0: s.w0,
        batches: s.train,
        optimiser: { lr: 0.05, momentum: 0.9 },
        onStep: async (st) =>
          disposeTree(
            (
              await hd.estimate({
                problem: anil,
                theta: st.wPrev,
                next: st.w,
                lambda: s.lambda,
                trainBatch: st.batch,
                valBatch: s.val,
                innerLr: 0.05,
              })
            ).hypergrad,
          ),
      });
      hd.reset();
      const r = await new DrMAD<RegressionBatch>().estimate({
        problem: anil,
        theta: run.wT,
        initial: s.w0,
        lambda: s.lambda,
        trainBatch: s.train[0],
        trainBatches: s.train,
        valBatch: s.val,
        innerLr: 0.05,
        momentum: 0.9,
      });
      disposeTree(r.hypergrad);
      disposeTree(run.wT);
    }, device);
    s.dispose();
  });
});
