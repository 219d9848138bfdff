/**
 * @file EvoGrad (Bohdal et al. 2021): K perturbed copies θ_k = θ + ε_k, fitness w = softmax(−ℓ/τ) of their
 * training losses, θ* = Σ w_k θ_k, and the hypergradient dL_V(θ*, λ)/dλ — first-order only, because the copies
 * are constants and λ reaches θ* only through the K scalar weights.
 *
 * Scaling note (read before choosing a meta-optimiser): for small σ (copies' losses differing by ≪ τ) the
 * expectation of the indirect term is −c·∇θL_V(θ)ᵀ ∂²L_T/∂θ∂λ, the T1–T2 direction (with ∇L_V at θ rather than at
 * θ') and an effective step c = σ²(K−1)/(Kτ) instead of α — about 1e-5 at σ = 1e-3, τ = 0.05, K = 2 — or c = σ²/τ
 * with antithetic pairs (checked in test/meta/evograd.test.ts). A single K = 2 sample's standard deviation is
 * roughly ten times its mean. Plain SGD on λ therefore barely moves it; use a scale-invariant meta-optimiser (Adam)
 * and log the hypergradient norms (the online trainer does). On Meta-Weight-Net the two estimators also differ in
 * what they differentiate: T1–T2 goes through ∇θL_T, in which the loss the weight net reads is detached, while
 * EvoGrad's copies' losses v(ℓ_i(θ_k))·ℓ_i(θ_k) keep that path.
 *
 * Cost: the K training forwards run on constant parameters, so only the λ-dependent part of the training loss is
 * recorded; with `problem.batchedTrainLoss` they are one batched forward (leaves stacked along a leading K axis),
 * otherwise K separate `trainLoss` calls (the fallback, which scales linearly with K).
 */
import { tidy, type Tensor } from '@metagrad/tensor';
import * as raw from '@metagrad/tensor/raw';
import { add, concat, detach, matmul, mulScalar, reshape, softmax } from '@metagrad/autograd';
import { tree, type ParamTree } from '@metagrad/models';
import {
  emptyStats,
  type BilevelProblem,
  type EvoGradIntermediates,
  type HypergradEstimator,
  type HypergradInput,
  type HypergradResult,
  type HypergradTensors,
  type HypergradWith,
} from './types';
import { checkFinite, checkPositiveInt, gradLeaves, gradTree, requireTrainBatch } from './common';
import { InvalidArgumentError } from '../errors';
import { readEstimate } from './result';

export type EvoGradNoise = 'rademacher' | 'gaussian';

export interface EvoGradOptions {
  /** Population size (number of perturbed copies), ≥ 1. K = 1 gives the direct term only. */
  K: number;
  /**
   * Perturbation scale: ε = σ·sign(N(0, 1)) (Rademacher) or ε ~ N(0, σ²) (Gaussian); ≥ 0. Needed to draw noise
   * (`estimate`, `estimateTensors`, `sampleNoise`), not by `estimateWithNoise`, which is given ε.
   */
  sigma?: number;
  /** Softmax temperature over −losses, > 0. */
  tau: number;
  /** Default 'rademacher' (the authors' experiments); 'gaussian' is their 1-D toy's. Ignored by `estimateWithNoise`. */
  noise?: EvoGradNoise;
  /** Pair every ε with −ε (K must be even): cancels the odd terms of the estimator's noise. */
  antithetic?: boolean;
  /** Seed of the noise stream; every estimate draws fresh noise from it (a per-call counter). */
  seed?: number;
  /** 'auto' (default) uses problem.batchedTrainLoss when present; 'loop' forces K separate forwards (for comparison). */
  forward?: 'auto' | 'loop';
}

export type EvoGradTensors<Θ extends ParamTree, Λ extends ParamTree> = HypergradWith<HypergradTensors<Λ>, EvoGradIntermediates<Θ>>;
export type EvoGradResult<Θ extends ParamTree, Λ extends ParamTree> = HypergradWith<HypergradResult<Λ>, EvoGradIntermediates<Θ>>;

export class EvoGrad<B = unknown> implements HypergradEstimator<B> {
  readonly name: string;
  readonly options: Required<Omit<EvoGradOptions, 'sigma'>> & Pick<EvoGradOptions, 'sigma'>;
  /** The noise stream: one Philox draw per θ leaf per estimate, so compiled replays draw fresh, eager-identical noise. */
  private readonly generator: raw.Generator;

  constructor(options: EvoGradOptions) {
    checkPositiveInt('EvoGrad', 'K', options.K);
    if (options.sigma !== undefined) checkFinite('EvoGrad', 'sigma', options.sigma, (v) => v >= 0, 'a finite number ≥ 0');
    checkFinite('EvoGrad', 'tau', options.tau, (v) => v > 0, 'a finite number > 0');
    const noise = options.noise ?? 'rademacher';
    if (noise !== 'rademacher' && noise !== 'gaussian') {
      throw new InvalidArgumentError(`EvoGrad: noise must be 'rademacher' or 'gaussian', got '${String(noise)}'`);
    }
    if (options.antithetic && options.K % 2 !== 0) {
      throw new InvalidArgumentError(`EvoGrad: antithetic sampling pairs ε with −ε, so K must be even, got K = ${options.K}`);
    }
    const forward = options.forward ?? 'auto';
    if (forward !== 'auto' && forward !== 'loop') throw new InvalidArgumentError(`EvoGrad: forward must be 'auto' or 'loop', got '${String(forward)}'`);
    this.options = { antithetic: false, seed: 0, ...options, noise, forward };
    this.name = `evograd-k${options.K}`;
    this.generator = new raw.Generator(this.options.seed);
  }

  /** Draws the K perturbations for `theta`: a tree of θ's structure with leaves [K, ...shape] (caller disposes). */
  sampleNoise<Θ extends ParamTree>(theta: Θ): Θ {
    const { K, sigma, noise, antithetic } = this.options;
    if (sigma === undefined) throw new InvalidArgumentError('EvoGrad: drawing noise needs the sigma option (estimateWithNoise does not)');
    const gen = this.generator; // offsets call·leaves + leaf: one independent Philox stream per call and leaf
    return tree.map(theta, (t) => {
      const draws = antithetic ? K / 2 : K;
      return raw.tidy(() => {
        const shape = [draws, ...t.shape];
        const base =
          noise === 'rademacher'
            ? raw.mulScalar(raw.rademacher(shape, gen, { device: t.device }), sigma)
            : raw.normal(shape, gen, { std: sigma, device: t.device });
        return antithetic ? raw.concat([base, raw.mulScalar(base, -1)], 0) : base;
      });
    });
  }

  async estimate<Θ extends ParamTree, Λ extends ParamTree>(input: HypergradInput<Θ, Λ, B>): Promise<EvoGradResult<Θ, Λ>> {
    const t0 = performance.now();
    return readEstimate(() => this.estimateTensors(input), t0);
  }

  estimateTensors<Θ extends ParamTree, Λ extends ParamTree>(input: HypergradInput<Θ, Λ, B>): EvoGradTensors<Θ, Λ> {
    return tidy(() => this.estimateTensorsWithNoise(input, this.sampleNoise(input.theta)));
  }

  /** The estimate for given perturbations (leaves [K, ...shape], already scaled by σ): deterministic, for tests. */
  async estimateWithNoise<Θ extends ParamTree, Λ extends ParamTree>(input: HypergradInput<Θ, Λ, B>, noise: Θ): Promise<EvoGradResult<Θ, Λ>> {
    const t0 = performance.now();
    return readEstimate(() => this.estimateTensorsWithNoise(input, noise), t0);
  }

  /** estimateWithNoise without the readback. */
  estimateTensorsWithNoise<Θ extends ParamTree, Λ extends ParamTree>(input: HypergradInput<Θ, Λ, B>, noise: Θ): EvoGradTensors<Θ, Λ> {
    const { K, tau } = this.options;
    const eps = tree.leaves(noise);
    const thetaLeaves = tree.leaves(input.theta);
    if (eps.length !== thetaLeaves.length || eps.some((e, i) => e.shape[0] !== K || e.size !== K * thetaLeaves[i].size)) {
      throw new InvalidArgumentError(
        `EvoGrad: noise must have θ's structure with leaves [K=${K}, ...shape]; got [${eps.map((e) => `[${e.shape.join(', ')}]`).join(', ')}]`,
      );
    }
    const trainBatch = requireTrainBatch('EvoGrad', input);
    const batched = this.options.forward === 'auto' && input.problem.batchedTrainLoss !== undefined;
    return tidy(() => {
      const lambda = gradLeaves(input.lambda);
      const theta = tree.detach(input.theta);
      // ℓ_k = L_T(θ_k, λ) with θ_k = θ + ε_k as constants: the copies need no graph to θ, which is where the memory
      // saving comes from, and (K parameter-sized buffers) are freed before the validation forward/backward.
      const losses = tidy(() => {
        const copies = tree.fromLeaves(
          theta,
          thetaLeaves.map((t, i) => raw.add(raw.reshape(t, [1, ...t.shape]), eps[i])),
        );
        return batched ? batchedLosses(input.problem, copies, lambda, trainBatch, K) : loopLosses(input.problem, copies, lambda, trainBatch, K);
      });
      const weights = softmax(mulScalar(losses, -1 / tau), 0); // w = softmax(−ℓ/τ)
      // θ* = Σ w_k (θ + ε_k) = θ + Σ w_k ε_k: written this way the gradient path Σ ε_k dw_k never subtracts large
      // nearly equal θ_k terms, which would drown σ-sized differences in f32 round-off.
      const w = reshape(weights, [1, K]);
      const thetaStar = tree.fromLeaves(
        theta,
        thetaLeaves.map((t, i) => add(t, reshape(matmul(w, raw.reshape(eps[i], [K, t.size])), t.shape))),
      );
      const valLoss = input.problem.valLoss(thetaStar, lambda, input.valBatch);
      const stats = { ...emptyStats(), gradients: 1, forwards: K + 1 };
      const out: EvoGradTensors<Θ, Λ> = { hypergrad: gradTree(valLoss, lambda), valLoss, stats }; // dL_V(θ*, λ)/dλ
      if (input.intermediates) {
        out.losses = detach(losses);
        out.weights = detach(weights);
        out.thetaStar = tree.detach(thetaStar);
      }
      return out;
    });
  }
}

function batchedLosses<Θ extends ParamTree, Λ extends ParamTree, B>(problem: BilevelProblem<Θ, Λ, B>, copies: Θ, lambda: Λ, batch: B, K: number): Tensor {
  const losses = problem.batchedTrainLoss!(copies, lambda, batch);
  if (losses.size !== K) throw new InvalidArgumentError(`EvoGrad: batchedTrainLoss must return K = ${K} losses, got shape [${losses.shape.join(', ')}]`);
  return losses.rank === 1 ? losses : reshape(losses, [K]);
}

/** The fallback: K separate forwards, each on one slice of the stacked copies. */
function loopLosses<Θ extends ParamTree, Λ extends ParamTree, B>(problem: BilevelProblem<Θ, Λ, B>, copies: Θ, lambda: Λ, batch: B, K: number): Tensor {
  const parts: Tensor[] = [];
  for (let k = 0; k < K; k++) {
    const copy = tree.map(copies, (t) => raw.reshape(raw.slice(t, [k, ...t.shape.slice(1).map(() => 0)], [k + 1, ...t.shape.slice(1)]), t.shape.slice(1)));
    parts.push(reshape(problem.trainLoss(copy, lambda, batch), [1]));
  }
  return K === 1 ? parts[0] : concat(parts, 0);
}
