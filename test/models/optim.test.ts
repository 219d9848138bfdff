/** @file Optimisers: functional and in-place SGD/Adam/AdamW match torch.optim and each other; schedules match torch; invalid settings throw. */
import { describe, it, expect } from 'vitest';
import * as raw from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { adam, Adam, cosine, InvalidHyperparameterError, linearDecay, sgd, SGD, stepLR, type FunctionalOptimizer } from '@metagrad/models';
import { useDevice } from '../helpers/device';
import { expectClose, fixture, initParams, problem, regressionLoss, type Params, type Trajectory } from './optim-helpers';

const getDevice = useDevice();

function options(tr: Trajectory) {
  const o = tr.options;
  const lr = tr.stepLR ? stepLR({ lr: o.lr, ...tr.stepLR }) : o.lr;
  return {
    lr,
    weightDecay: o.weight_decay ?? (tr.kind === 'adamw' ? 0.01 : 0),
    momentum: o.momentum,
    dampening: o.dampening,
    nesterov: o.nesterov,
    betas: o.betas,
    eps: o.eps,
    decoupled: tr.kind === 'adamw',
  };
}

function functional(tr: Trajectory): FunctionalOptimizer<unknown> {
  const o = options(tr);
  return (tr.kind === 'sgd' ? sgd(o) : adam(o)) as FunctionalOptimizer<unknown>;
}

function inPlace(tr: Trajectory, params: Params): { step(g: Params): void; dispose(): void } {
  const o = options(tr);
  return tr.kind === 'sgd' ? new SGD(params, o) : new Adam(params, o);
}

const gradsOf = (p: Params, x: raw.Tensor, y: raw.Tensor): Params => {
  const loss = regressionLoss(p, x, y);
  const [W, b] = ag.grad(loss, [p.W, p.b]);
  loss.dispose();
  return { W, b };
};

describe('optimisers match torch.optim', () => {
  for (const tr of fixture.trajectories) {
    it(`${tr.name}: functional and in-place follow torch for ${tr.steps.length} steps`, async () => {
      const device = getDevice();
      const data = problem();
      await ag.expectNoLeaks(async () => {
        // Functional.
        const opt = functional(tr);
        let p = initParams();
        let state = opt.init(p);
        // In-place, on leaves that require grad (as in ordinary training).
        const q = initParams();
        ag.requiresGrad(q.W);
        ag.requiresGrad(q.b);
        const opt2 = inPlace(tr, q);
        for (const [k, want] of tr.steps.entries()) {
          ag.requiresGrad(p.W);
          ag.requiresGrad(p.b);
          const g = gradsOf(p, data.X, data.Y);
          const next = ag.noGrad(() => opt.step(p, g, state));
          opt.disposeState(state);
          raw.dispose([p, g]);
          p = next.params;
          state = next.state;
          const g2 = gradsOf(q, data.X, data.Y);
          opt2.step(g2);
          raw.dispose(g2);
          await expectClose(p.W, want.W, 2e-5, `${tr.name} functional W step ${k + 1}`);
          await expectClose(p.b, want.b, 2e-5, `${tr.name} functional b step ${k + 1}`);
          await expectClose(q.W, want.W, 2e-5, `${tr.name} in-place W step ${k + 1}`);
          await expectClose(q.b, want.b, 2e-5, `${tr.name} in-place b step ${k + 1}`);
          // Functional == in-place, tighter than the torch tolerance.
          await expectClose(q.W, Array.from(await p.W.toArray()), 5e-6, `${tr.name} in-place vs functional W step ${k + 1}`);
        }
        opt.disposeState(state);
        opt2.dispose();
        raw.dispose([p, q]);
        await device.sync();
      }, device);
      data.dispose();
    });
  }
});

describe('in-place equals functional on leaves spanning many workgroups', () => {
  const configs = [
    [
      'SGD nesterov + weight decay',
      () => sgd({ lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 }),
      (p: raw.Tensor[]) => new SGD(p, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 }),
    ],
    [
      'AdamW with a cosine schedule',
      () => adam({ lr: cosine({ lr: 0.01, steps: 3 }), weightDecay: 0.1, decoupled: true }),
      (p: raw.Tensor[]) => new Adam(p, { lr: cosine({ lr: 0.01, steps: 3 }), weightDecay: 0.1, decoupled: true }),
    ],
  ] as const;
  for (const [name, makeF, makeI] of configs) {
    it(name, async () => {
      const device = getDevice();
      await ag.expectNoLeaks(async () => {
        const shapes = [[300, 70], [37]]; // 21000 elements: several workgroups of 256 × 16
        let p = shapes.map((s, i) => raw.normal(s, 100 + i));
        const q = shapes.map((s, i) => raw.normal(s, 100 + i));
        const opt = makeF() as FunctionalOptimizer<unknown>;
        let state = opt.init(p);
        const inPlace = makeI(q);
        for (let k = 0; k < 3; k++) {
          const g = shapes.map((s, i) => raw.normal(s, 200 + 10 * k + i));
          const next = ag.noGrad(() => opt.step(p, g, state));
          opt.disposeState(state);
          raw.dispose(p);
          p = next.params;
          state = next.state;
          inPlace.step(g);
          raw.dispose(g);
        }
        for (let i = 0; i < shapes.length; i++) await expectClose(q[i], Array.from(await p[i].toArray()), 5e-6, `${name} leaf ${i}`);
        opt.disposeState(state);
        inPlace.dispose();
        raw.dispose([p, q]);
        await device.sync();
      }, device);
    });
  }
});

describe('schedules match torch.optim.lr_scheduler', () => {
  const s = fixture.schedules;
  const cases = [
    ['stepLR', stepLR(s.stepLR.options as Parameters<typeof stepLR>[0]), s.stepLR.values],
    ['cosine', cosine(s.cosine.options as Parameters<typeof cosine>[0]), s.cosine.values],
    ['linearDecay', linearDecay(s.linearDecay.options as Parameters<typeof linearDecay>[0]), s.linearDecay.values],
  ] as const;
  for (const [name, schedule, values] of cases) {
    it(name, () => {
      values.forEach((v, step) => expect(schedule(step), `${name}(${step})`).toBeCloseTo(v, 12));
    });
  }
  it('stay at their final value past the end', () => {
    expect(cosine({ lr: 1, steps: 4, minLr: 0.1 })(100)).toBeCloseTo(0.1, 12);
    expect(linearDecay({ lr: 1, steps: 4 })(9)).toBe(0);
  });
});

describe('invalid hyperparameters are named errors', () => {
  const bad: [string, () => unknown, RegExp][] = [
    ['negative lr', () => sgd({ lr: -0.1 }), /lr must be .*got -0\.1/],
    ['NaN lr', () => new SGD([], { lr: NaN }), /lr must be .*got NaN/],
    ['negative momentum', () => sgd({ lr: 0.1, momentum: -1 }), /momentum .*got -1/],
    ['nesterov without momentum', () => sgd({ lr: 0.1, nesterov: true }), /nesterov needs momentum > 0.*momentum 0/],
    ['nesterov with dampening', () => sgd({ lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }), /dampening 0\.1/],
    ['negative weight decay', () => adam({ lr: 0.1, weightDecay: -1 }), /weightDecay .*got -1/],
    ['beta1 = 1', () => adam({ lr: 0.1, betas: [1, 0.999] }), /betas\[0\] must be .*\[0, 1\), got 1/],
    ['beta2 < 0', () => new Adam([], { lr: 0.1, betas: [0.9, -0.5] }), /betas\[1\].*got -0\.5/],
    ['eps = 0', () => adam({ lr: 0.1, eps: 0 }), /eps must be .*> 0, got 0/],
    ['stepLR stepSize 0', () => stepLR({ lr: 0.1, stepSize: 0 }), /stepSize must be a positive integer, got 0/],
    ['cosine negative minLr', () => cosine({ lr: 0.1, steps: 10, minLr: -1 }), /minLr .*got -1/],
    ['linearDecay fractional steps', () => linearDecay({ lr: 0.1, steps: 2.5 }), /steps .*got 2\.5/],
  ];
  for (const [what, fn, message] of bad) {
    it(what, () => {
      expect(fn).toThrowError(InvalidHyperparameterError);
      expect(fn).toThrowError(message);
    });
  }

  it('a schedule that goes negative fails at the step that uses it', () => {
    const opt = sgd({ lr: (step) => 0.1 - step });
    const p = raw.tensor([1], [1]);
    const g = raw.tensor([1], [1]);
    const s = opt.init(p);
    const r = opt.step(p, g, s);
    expect(() => opt.step(r.params, g, r.state)).toThrowError(/lr \(schedule at step 1\) must be .*got -0\.9/);
    raw.dispose([p, g, r.params]);
  });

  it('in-place classes reject tensor hyperparameters and mismatched gradients', () => {
    const lr = raw.tensor([0.1], [1]);
    const p = raw.zeros([2, 3]);
    expect(() => new SGD([p], { lr })).toThrowError(InvalidHyperparameterError);
    const opt = new Adam([p], { lr: 0.1 });
    const g = raw.zeros([3, 2]);
    expect(() => opt.step([g])).toThrowError(raw.ShapeError);
    expect(() => opt.step([g, g])).toThrowError(/2 gradients for 1 parameters/);
    opt.dispose();
    raw.dispose([lr, p, g]);
  });
});
