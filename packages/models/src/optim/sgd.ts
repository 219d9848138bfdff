/**
 * @file SGD with momentum, dampening, Nesterov and weight decay (torch.optim.SGD semantics), as a differentiable
 * functional optimiser and as an in-place class for ordinary training.
 */
import { tidy, type Tensor, zeros } from '@metagrad/tensor';
import { add, axpby, reshape, sub } from '@metagrad/autograd';
import { disposeTree, leaves, mapTree, zipTree, type ParamTree } from '../params';
import { checkNumber, InvalidHyperparameterError } from './errors';
import { checkHyper, inPlaceHypers, isZero, resolveHyper, scaleBy, stepGradients } from './hyper';
import { sgdUpdateInPlace, type SgdUpdate } from './kernels';
import type { FunctionalOptimizer, Hyper, Schedule } from './types';

export interface SgdOptions {
  /** Learning rate: a number, a schedule of the step, or (functional form only) a one-element tensor. */
  lr: Hyper;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  /** L2 penalty added to the gradient (g + wd·p), as torch; a tensor in the functional form. */
  weightDecay?: Hyper;
}

export interface SgdState {
  /** Steps taken so far (schedules are evaluated at this count). */
  readonly step: number;
  /** Momentum buffers (null before the first step, or without momentum). */
  readonly momentum: ParamTree | null;
}

function validate(where: string, o: SgdOptions): Required<Omit<SgdOptions, 'lr' | 'weightDecay'>> {
  checkHyper(where, 'lr', o.lr);
  checkHyper(where, 'weightDecay', o.weightDecay ?? 0);
  const momentum = o.momentum ?? 0;
  const dampening = o.dampening ?? 0;
  checkNumber(where, 'momentum', momentum, 0);
  checkNumber(where, 'dampening', dampening, 0);
  const nesterov = o.nesterov ?? false;
  if (nesterov && (momentum <= 0 || dampening !== 0)) {
    throw new InvalidHyperparameterError(`${where}: nesterov needs momentum > 0 and dampening = 0, got momentum ${momentum}, dampening ${dampening}`);
  }
  return { momentum, dampening, nesterov };
}

/** Functional SGD: `(params, grads, state) → (params', state')` from differentiable ops. */
export function sgd(options: SgdOptions): FunctionalOptimizer<SgdState> {
  const { momentum, dampening, nesterov } = validate('sgd', options);
  return {
    init: () => ({ step: 0, momentum: null }),
    step<T extends ParamTree>(params: T, grads: ParamTree, state: SgdState) {
      const lr = resolveHyper('sgd', 'lr', options.lr, state.step);
      const wd = resolveHyper('sgd', 'weightDecay', options.weightDecay ?? 0, state.step);
      const bl = state.momentum ? leaves(state.momentum) : null;
      const newBufs: Tensor[] = [];
      return tidy(() => {
        let i = 0;
        const next = zipTree(params, grads, (p, g0) => {
          const k = i++;
          let d = isZero(wd) ? g0 : add(g0, scaleBy(p, wd));
          if (momentum !== 0) {
            // torch: the first step's buffer is the (decayed) gradient itself; a view keeps it a distinct handle.
            const buf = bl ? axpby(momentum, bl[k], 1 - dampening, d) : reshape(d, d.shape);
            newBufs.push(buf);
            d = nesterov ? add(d, scaleBy(buf, momentum)) : buf;
          }
          // One fused dispatch for a number lr; a tensor lr (learned step size) stays a differentiable product.
          return typeof lr === 'number' ? axpby(1, p, -lr, d) : sub(p, scaleBy(d, lr));
        });
        const state2: SgdState = { step: state.step + 1, momentum: momentum !== 0 ? fromList(params, newBufs) : null };
        return { params: next, state: state2 };
      });
    },
    disposeState: (state) => {
      if (state.momentum) disposeTree(state.momentum);
    },
  };
}

function fromList(like: ParamTree, values: Tensor[]): ParamTree {
  let i = 0;
  return mapTree(like, () => values[i++]);
}

/**
 * In-place SGD: `step(grads)` overwrites the parameter leaves' storage (one fused kernel per leaf, no graph) and
 * bumps their storage version, so a backward through a graph recorded before the step throws
 * InPlaceModificationError, as torch does: step after taking gradients. `dispose()` frees the momentum buffers
 * (not the parameters).
 */
export class SGD {
  private readonly params: Tensor[];
  private readonly buffers: Tensor[] | null;
  private readonly opts: ReturnType<typeof validate>;
  private readonly weightDecay: number;
  /** Learning rate (a number or a schedule of the step count); may be reassigned between steps. */
  lr: number | Schedule;
  /** Steps taken so far. */
  stepCount = 0;

  constructor(params: ParamTree, options: SgdOptions) {
    this.opts = validate('SGD', options);
    ({ lr: this.lr, weightDecay: this.weightDecay } = inPlaceHypers('SGD', 'sgd', options));
    this.params = leaves(params);
    this.buffers = this.opts.momentum !== 0 ? this.params.map((p) => zeros(p.shape, 'f32', p.device)) : null;
  }

  step(grads: ParamTree): void {
    const gl = stepGradients('SGD', this.params, grads);
    if (this.params.length === 0) {
      this.stepCount++;
      return;
    }
    const { momentum, dampening, nesterov } = this.opts;
    // Host state of a step (its count, the scheduled lr) goes through onReplay and a hyper thunk, so a compiled step
    // that calls step() sees the real count at each replay instead of the one it was traced with.
    let h!: SgdUpdate;
    const device = this.params[0].device;
    device.onReplay(() => {
      const lr = resolveHyper('SGD', 'lr', this.lr, this.stepCount) as number;
      h = { lr, weightDecay: this.weightDecay, momentum, dampening, nesterov, first: this.stepCount === 0 };
    });
    this.params.forEach((p, i) => {
      sgdUpdateInPlace(p, gl[i], this.buffers ? this.buffers[i] : null, () => h);
    });
    device.onReplay(() => this.stepCount++);
  }

  dispose(): void {
    this.buffers?.forEach((b) => b.dispose());
  }
}
