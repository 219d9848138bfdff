/**
 * @file Differentiable optimiser unrolls: hypergradients through SGD-momentum, Adam and AdamW equal PyTorch's
 * autograd through the same unroll; Adam's square root stays finite at v = 0; 100-step loops with createGraph on
 * and off (functional and in-place) free everything.
 */
import { describe, it, expect } from 'vitest';
import * as raw from '@metagrad/tensor/raw';
import type { Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { adam, Adam, sgd, SGD, type FunctionalOptimizer } from '@metagrad/models';
import { useDevice } from '../helpers/device';
import { expectClose, fixture, initParams, problem, regressionLoss, type Params, type Problem } from './optim-helpers';

const getDevice = useDevice();
const hyper = (name: string) => fixture.hypergradients.find((h) => h.name === name)!;

/** Train loss: the regression loss plus λ·ΣW² when a loss weight is given. */
function trainLoss(p: Params, d: Problem, lossWeight?: Tensor): Tensor {
  return raw.tidy(() => {
    const base = regressionLoss(p, d.X, d.Y);
    return lossWeight ? ag.add(base, ag.mul(lossWeight, ag.sum(ag.square(p.W)))) : base;
  });
}

/**
 * `steps` differentiable steps from the fixture's initial parameters, then the validation loss and its gradient
 * with respect to `lambda`. Old params/state handles are disposed as the loop goes: the graph keeps what it saved.
 */
function unroll<S>(opt: FunctionalOptimizer<S>, d: Problem, steps: number, lambda: Tensor, lossWeight?: Tensor) {
  return raw.tidy(() => {
    let p = initParams();
    ag.requiresGrad(p.W);
    ag.requiresGrad(p.b);
    let state = opt.init(p);
    for (let k = 0; k < steps; k++) {
      const loss = trainLoss(p, d, lossWeight);
      const [gW, gb] = ag.grad(loss, [p.W, p.b], { createGraph: true });
      const next = opt.step(p, { W: gW, b: gb }, state);
      raw.dispose([loss, gW, gb, p]);
      opt.disposeState(state);
      p = next.params;
      state = next.state;
    }
    opt.disposeState(state);
    const val = regressionLoss(p, d.Xval, d.Yval);
    const [h] = ag.grad(val, [lambda]);
    return { val: ag.detach(val), h, W: ag.detach(p.W), b: ag.detach(p.b) };
  });
}

async function checkAgainstTorch(name: string, result: ReturnType<typeof unroll>, hypergradTol: number): Promise<void> {
  const want = hyper(name);
  await expectClose(result.W, want.W, 1e-5, `${name} final W`);
  await expectClose(result.b, want.b, 1e-5, `${name} final b`);
  await expectClose(result.val, [want.valLoss], 1e-5, `${name} validation loss`);
  const h = await result.h.item();
  expect(Math.abs(h - want.hypergrad), `${name}: dL_val/dλ ${h} vs torch ${want.hypergrad}`).toBeLessThanOrEqual(hypergradTol * Math.abs(want.hypergrad));
}

describe('hypergradients through differentiable unrolls match PyTorch', () => {
  it('SGD with momentum: dL_val/d(weight decay) over 4 steps', async () => {
    const d = problem();
    const want = hyper('sgd_momentum_weight_decay');
    const lambda = ag.requiresGrad(raw.tensor([want.lambda], []));
    const r = unroll(sgd({ lr: want.lr!, momentum: want.momentum!, weightDecay: lambda }), d, want.steps, lambda);
    await checkAgainstTorch(want.name, r, 1e-3);
    raw.dispose([r, lambda]);
    d.dispose();
  });

  it('Adam: dL_val/d(loss weight λ of λ·ΣW²) over 4 steps', async () => {
    const d = problem();
    const want = hyper('adam_loss_weight');
    const lambda = ag.requiresGrad(raw.tensor([want.lambda], []));
    const r = unroll(adam({ lr: want.lr! }), d, want.steps, lambda, lambda);
    await checkAgainstTorch(want.name, r, 5e-3);
    raw.dispose([r, lambda]);
    d.dispose();
  });

  it('AdamW: dL_val/d(learning rate) over 3 steps', async () => {
    const d = problem();
    const want = hyper('adamw_lr');
    const lr = ag.requiresGrad(raw.tensor([want.lambda], []));
    const r = unroll(adam({ lr, weightDecay: want.weightDecay!, decoupled: true }), d, want.steps, lr);
    await checkAgainstTorch(want.name, r, 1e-3);
    raw.dispose([r, lr]);
    d.dispose();
  });

  it("Adam's square root stays finite and differentiable where v = 0", async () => {
    // Input column 0 is all zeros and W's row 0 starts at zero, so that row's gradient (2λW) is exactly zero
    // throughout: v = 0 there, where torch's sqrt(v) would put 0·∞ = NaN into the hypergradient.
    const d = problem();
    const X = raw.tidy(() => raw.mul(d.X, raw.tensor([0, 1, 1], [1, 3])));
    const mask = raw.tensor([0, 0, 1, 1, 1, 1], [3, 2]);
    const lambda = ag.requiresGrad(raw.tensor([0.2], []));
    const opt = adam({ lr: 0.05 });
    const [h, W] = raw.tidy(() => {
      let p: Params = { W: ag.requiresGrad(raw.mul(initParams().W, mask)), b: ag.requiresGrad(initParams().b) };
      let state = opt.init(p);
      for (let k = 0; k < 3; k++) {
        const loss = trainLoss(p, { ...d, X }, lambda);
        const [gW, gb] = ag.grad(loss, [p.W, p.b], { createGraph: true });
        const next = opt.step(p, { W: gW, b: gb }, state);
        p = next.params;
        state = next.state;
      }
      const [g] = ag.grad(regressionLoss(p, d.Xval, d.Yval), [lambda]);
      return [g, ag.detach(p.W)];
    });
    const hv = await h.item();
    const want = adamHypergradOnHost(Array.from(await X.toArray()), Array.from(await mask.toArray()), 0.2, 0.05, 3);
    // Measured 6.8e-7 relative (llvmpipe and SwiftShader); tolerance 1e-5.
    expect(Math.abs(hv - want), `hypergradient ${hv} vs float64 forward mode ${want}`).toBeLessThan(1e-5 * Math.abs(want));
    const w = await W.toArray();
    expect([w[0], w[1]]).toEqual([0, 0]);
    raw.dispose([h, W, X, mask, lambda]);
    d.dispose();
  });
});

describe('no leaks over 100 steps', () => {
  const STEPS = 100;
  const optimisers = (): [string, FunctionalOptimizer<unknown>][] => [
    ['sgd-momentum', sgd({ lr: 0.05, momentum: 0.9, weightDecay: 0.01 }) as FunctionalOptimizer<unknown>],
    ['adam', adam({ lr: 0.01, weightDecay: 0.01, decoupled: true }) as FunctionalOptimizer<unknown>],
  ];

  it('createGraph on: a 100-step differentiable unroll and its hypergradient free everything', async () => {
    const device = getDevice();
    const d = problem();
    for (const [name, make] of [
      ['sgd-momentum', (lam: Tensor) => sgd({ lr: 0.05, momentum: 0.9, weightDecay: lam })],
      ['adam', (lam: Tensor) => adam({ lr: 0.01, weightDecay: lam, decoupled: true })],
    ] as const) {
      await ag.expectNoLeaks(
        async () => {
          const lambda = ag.requiresGrad(raw.tensor([0.01], []));
          const r = unroll(make(lambda) as FunctionalOptimizer<unknown>, d, STEPS, lambda);
          expect(Number.isFinite(await r.h.item()), name).toBe(true);
          raw.dispose([r, lambda]);
          await device.sync();
        },
        device,
        `${name} unroll`,
      );
    }
    d.dispose();
  });

  it('createGraph off: 100 functional steps (no graph) and 100 in-place steps free everything', async () => {
    const device = getDevice();
    const d = problem();
    for (const [name, opt] of optimisers()) {
      await ag.expectNoLeaks(
        async () => {
          let p = initParams();
          let state = opt.init(p);
          for (let k = 0; k < STEPS; k++) {
            ag.requiresGrad(p.W);
            ag.requiresGrad(p.b);
            const loss = trainLoss(p, d);
            const [gW, gb] = ag.grad(loss, [p.W, p.b]);
            const next = ag.noGrad(() => opt.step(p, { W: gW, b: gb }, state));
            raw.dispose([loss, gW, gb, p]);
            opt.disposeState(state);
            p = next.params;
            state = next.state;
          }
          opt.disposeState(state);
          raw.dispose(p);
          await device.sync();
        },
        device,
        `${name} functional`,
      );
    }
    for (const [name, make] of [
      ['SGD', (p: Params) => new SGD(p, { lr: 0.05, momentum: 0.9, nesterov: true })],
      ['Adam', (p: Params) => new Adam(p, { lr: 0.01, weightDecay: 0.01 })],
    ] as const) {
      await ag.expectNoLeaks(
        async () => {
          const p = initParams();
          ag.requiresGrad(p.W);
          ag.requiresGrad(p.b);
          const opt = make(p);
          for (let k = 0; k < STEPS; k++) {
            const loss = trainLoss(p, d);
            const [gW, gb] = ag.grad(loss, [p.W, p.b]);
            opt.step({ W: gW, b: gb });
            raw.dispose([loss, gW, gb]);
          }
          // The loss went down: the updates landed in the leaves' own storage.
          const end = trainLoss(p, d);
          const p0 = initParams();
          const start = trainLoss(p0, d);
          expect(await end.item(), name).toBeLessThan(await start.item());
          opt.dispose();
          raw.dispose([p, p0, end, start]);
          await device.sync();
        },
        device,
        `${name} in-place`,
      );
    }
    d.dispose();
  });
});

/**
 * dL_val/dλ of `steps` Adam steps (β = (0.9, 0.999), ε = 1e-8, denominator √(v/bc₂ + ε²) as in adam()) on
 * mean((X W + b − Y)²) + λ·ΣW², by forward-mode differentiation on the host in float64: every quantity carries its
 * derivative with respect to λ. Independent of autograd and of the GPU.
 */
function adamHypergradOnHost(X: number[], mask: number[], lambda: number, lr: number, steps: number): number {
  const p = fixture.problem;
  const [n, di] = p.X.shape;
  const dout = p.W0.shape[1];
  const nv = p.Xval.shape[0];
  const W = p.W0.data.map((w, i) => w * mask[i]);
  const b = [...p.b0.data];
  const dW = W.map(() => 0);
  const db = b.map(() => 0);
  const [beta1, beta2, eps] = [0.9, 0.999, 1e-8];
  const m = [...W.map(() => 0), ...b.map(() => 0)];
  const v = m.map(() => 0);
  const dm = m.map(() => 0);
  const dv = m.map(() => 0);
  // Residuals R = X W + b − Y and their tangents, for (inputs, targets, rows).
  const residuals = (x: number[], y: number[], rows: number) => {
    const r: number[] = [];
    const dr: number[] = [];
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < dout; j++) {
        let z = b[j] - y[i * dout + j];
        let dz = db[j];
        for (let k = 0; k < di; k++) {
          z += x[i * di + k] * W[k * dout + j];
          dz += x[i * di + k] * dW[k * dout + j];
        }
        r.push(z);
        dr.push(dz);
      }
    }
    return { r, dr };
  };
  for (let t = 1; t <= steps; t++) {
    const { r, dr } = residuals(X, p.Y.data, n);
    const c = 2 / (n * dout);
    const g: number[] = [];
    const dg: number[] = [];
    for (let k = 0; k < di; k++) {
      for (let j = 0; j < dout; j++) {
        let s = 2 * lambda * W[k * dout + j];
        let ds = 2 * W[k * dout + j] + 2 * lambda * dW[k * dout + j];
        for (let i = 0; i < n; i++) {
          s += c * X[i * di + k] * r[i * dout + j];
          ds += c * X[i * di + k] * dr[i * dout + j];
        }
        g.push(s);
        dg.push(ds);
      }
    }
    for (let j = 0; j < dout; j++) {
      let s = 0;
      let ds = 0;
      for (let i = 0; i < n; i++) {
        s += c * r[i * dout + j];
        ds += c * dr[i * dout + j];
      }
      g.push(s);
      dg.push(ds);
    }
    const bc1 = 1 - beta1 ** t;
    const bc2 = 1 - beta2 ** t;
    for (let q = 0; q < g.length; q++) {
      m[q] = beta1 * m[q] + (1 - beta1) * g[q];
      dm[q] = beta1 * dm[q] + (1 - beta1) * dg[q];
      v[q] = beta2 * v[q] + (1 - beta2) * g[q] ** 2;
      dv[q] = beta2 * dv[q] + 2 * (1 - beta2) * g[q] * dg[q];
      const den = Math.sqrt(v[q] / bc2 + eps * eps);
      const dden = dv[q] / bc2 / (2 * den);
      const u = m[q] / den;
      const du = dm[q] / den - (m[q] * dden) / (den * den);
      if (q < W.length) {
        W[q] -= (lr / bc1) * u;
        dW[q] -= (lr / bc1) * du;
      } else {
        b[q - W.length] -= (lr / bc1) * u;
        db[q - W.length] -= (lr / bc1) * du;
      }
    }
  }
  const { r, dr } = residuals(p.Xval.data, p.Yval.data, nv);
  return r.reduce((s, ri, i) => s + (2 / (nv * dout)) * ri * dr[i], 0);
}
