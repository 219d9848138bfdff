/**
 * @file Adam and AdamW (torch.optim.Adam/AdamW semantics, bias correction included) as a differentiable functional
 * optimiser and as an in-place class.
 *
 * Deviation from torch, on purpose: the denominator is sqrt(v̂ + eps²) instead of sqrt(v̂) + eps (v̂ = v / (1 − β2^t)).
 * torch's sqrt has an infinite derivative at v̂ = 0 (a parameter whose gradients were all zero), which turns a
 * differentiable unroll's hypergradient into NaN; sqrt(v̂ + eps²) is smooth, its derivative is bounded by 1/(2·eps),
 * and it equals torch's denominator at v̂ = 0 (eps) and for v̂ ≫ eps² (within eps; at most a factor √2 smaller, at v̂ = eps²).
 * The in-place class uses the same formula so both forms agree.
 */
import { ShapeError, tidy, type Tensor, zeros } from '@metagrad/tensor';
import { add, axpby, div, mulScalar, sqrt, sub, square, addScalar } from '@metagrad/autograd';
import { disposeTree, leaves, mapTree, zipTree, type ParamTree } from '../params';
import { checkNumber, InvalidHyperparameterError } from './errors';
import { checkHyper, inPlaceHypers, isZero, resolveHyper, scaleBy, stepGradients } from './hyper';
import { adamUpdateInPlace, type AdamUpdate } from './kernels';
import type { FunctionalOptimizer, Hyper, Schedule } from './types';

export interface AdamOptions {
  /** Learning rate: a number, a schedule of the step, or (functional form only) a one-element tensor. */
  lr: Hyper;
  /** (β1, β2), each in [0, 1); default (0.9, 0.999). */
  betas?: readonly [number, number];
  /** Default 1e-8; must be > 0 (it also keeps the square root differentiable at zero). */
  eps?: number;
  /** Weight decay (a tensor in the functional form): L2 added to the gradient, or decoupled (AdamW) when `decoupled`. */
  weightDecay?: Hyper;
  /** AdamW: p ← p·(1 − lr·wd) before the Adam update, instead of adding wd·p to the gradient. */
  decoupled?: boolean;
}

export interface AdamState {
  /** Steps taken so far (t − 1 for the next bias correction). */
  readonly step: number;
  /** First and second moment estimates, shaped like the parameters. */
  readonly m: ParamTree;
  readonly v: ParamTree;
}

interface Checked {
  beta1: number;
  beta2: number;
  eps: number;
  decoupled: boolean;
}

function validate(where: string, o: AdamOptions): Checked {
  checkHyper(where, 'lr', o.lr);
  checkHyper(where, 'weightDecay', o.weightDecay ?? 0);
  const betas = o.betas ?? [0.9, 0.999];
  if (!Array.isArray(betas) || betas.length !== 2) throw new InvalidHyperparameterError(`${where}: betas must be a pair, got ${JSON.stringify(betas)}`);
  checkNumber(where, 'betas[0]', betas[0], 0, 1);
  checkNumber(where, 'betas[1]', betas[1], 0, 1);
  const eps = o.eps ?? 1e-8;
  if (!(Number.isFinite(eps) && eps > 0)) throw new InvalidHyperparameterError(`${where}: eps must be a finite number > 0, got ${eps}`);
  return { beta1: betas[0], beta2: betas[1], eps, decoupled: o.decoupled ?? false };
}

const zerosLike = (tree: ParamTree): ParamTree => mapTree(tree, (t) => zeros(t.shape, 'f32', t.device));

/** Functional Adam/AdamW: `(params, grads, state) → (params', state')` from differentiable ops. */
export function adam(options: AdamOptions): FunctionalOptimizer<AdamState> {
  const { beta1, beta2, eps, decoupled } = validate('adam', options);
  return {
    init: (params) => ({ step: 0, m: zerosLike(params), v: zerosLike(params) }),
    step<T extends ParamTree>(params: T, grads: ParamTree, state: AdamState) {
      const lr = resolveHyper('adam', 'lr', options.lr, state.step);
      const wd = resolveHyper('adam', 'weightDecay', options.weightDecay ?? 0, state.step);
      const ml = leaves(state.m);
      const vl = leaves(state.v);
      if (ml.length !== leaves(params).length) throw new ShapeError(`adam: state has ${ml.length} moments for ${leaves(params).length} parameters`);
      const t = state.step + 1;
      const bc1 = 1 - beta1 ** t;
      const bc2 = 1 - beta2 ** t;
      const newM: Tensor[] = [];
      const newV: Tensor[] = [];
      return tidy(() => {
        let i = 0;
        const next = zipTree(params, grads, (p0, g0) => {
          const k = i++;
          let p = p0;
          let g = g0;
          if (!isZero(wd)) {
            if (decoupled) p = sub(p0, scaleBy(scaleBy(p0, lr), wd));
            else g = add(g0, scaleBy(p0, wd));
          }
          const m = axpby(beta1, ml[k], 1 - beta1, g);
          const v = axpby(beta2, vl[k], 1 - beta2, square(g));
          newM.push(m);
          newV.push(v);
          const denom = sqrt(addScalar(mulScalar(v, 1 / bc2), eps * eps));
          const stepSize = typeof lr === 'number' ? lr / bc1 : mulScalar(lr, 1 / bc1);
          return sub(p, scaleBy(div(m, denom), stepSize));
        });
        let j = 0;
        let l = 0;
        return {
          params: next,
          state: { step: t, m: mapTree(state.m, () => newM[j++]), v: mapTree(state.v, () => newV[l++]) },
        };
      });
    },
    disposeState: (state) => {
      disposeTree(state.m);
      disposeTree(state.v);
    },
  };
}

/**
 * In-place Adam/AdamW: `step(grads)` overwrites the parameter leaves' storage and the moment buffers (one fused
 * kernel per leaf, no graph), bumping their storage version: a backward through a graph recorded before the step
 * throws InPlaceModificationError. `dispose()` frees the moments (not the parameters).
 */
export class Adam {
  private readonly params: Tensor[];
  private readonly m: Tensor[];
  private readonly v: Tensor[];
  private readonly opts: Checked;
  private readonly weightDecay: number;
  /** Learning rate (a number or a schedule of the step count); may be reassigned between steps. */
  lr: number | Schedule;
  /** Steps taken so far. */
  stepCount = 0;

  constructor(params: ParamTree, options: AdamOptions) {
    this.opts = validate('Adam', options);
    ({ lr: this.lr, weightDecay: this.weightDecay } = inPlaceHypers('Adam', 'adam', options));
    this.params = leaves(params);
    this.m = this.params.map((p) => zeros(p.shape, 'f32', p.device));
    this.v = this.params.map((p) => zeros(p.shape, 'f32', p.device));
  }

  step(grads: ParamTree): void {
    const gl = stepGradients('Adam', this.params, grads);
    if (this.params.length === 0) {
      this.stepCount++;
      return;
    }
    const { beta1, beta2, eps, decoupled } = this.opts;
    // As SGD.step: the count, lr and bias corrections are host values of each step, recomputed at every replay.
    let h!: AdamUpdate;
    const device = this.params[0].device;
    device.onReplay(() => {
      const lr = resolveHyper('Adam', 'lr', this.lr, this.stepCount) as number;
      const t = this.stepCount + 1;
      h = { lr, weightDecay: this.weightDecay, decoupled, beta1, beta2, eps, bc1: 1 - beta1 ** t, bc2: 1 - beta2 ** t };
    });
    this.params.forEach((p, i) => {
      adamUpdateInPlace(p, gl[i], this.m[i], this.v[i], () => h);
    });
    device.onReplay(() => this.stepCount++);
  }

  dispose(): void {
    this.m.forEach((x) => x.dispose());
    this.v.forEach((x) => x.dispose());
  }
}
