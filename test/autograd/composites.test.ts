/**
 * @file PyTorch golden fixtures for composite first/second-order derivatives (test/fixtures/gen_autograd.py):
 * MLP HVP, cross-entropy HVP, conv→ReLU→max-pool mixed blocks, a Meta-Weight-Net T1–T2 step, second-order MAML.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as raw from '@metagrad/tensor/raw';
import type { Tensor } from '@metagrad/tensor';
import * as ag from '@metagrad/autograd';
import { useDevice } from '../helpers/device';

interface Json {
  shape: number[];
  data: number[];
}
type Case = { inputs: Record<string, any>; outputs: Record<string, any> } & Record<string, any>;

const fixture = JSON.parse(readFileSync(new URL('../fixtures/autograd-composites.json', import.meta.url), 'utf8')) as {
  cases: Record<string, any>;
};

const device = useDevice();

// f32 against float64, relative to each block's largest entry. On llvmpipe every block agrees to ≤ 1.2e-6; the
// bounds leave room for other adapters' summation orders and FMA, and are still far below what a wrong rule gives.
const FIRST = 2e-5;
const SECOND = 5e-5;
const UNROLLED = 1e-4;

const T = (j: Json): Tensor => raw.tensor(Float32Array.from(j.data), j.shape, 'f32', device());
const P = (j: Json): Tensor => ag.requiresGrad(T(j));
const labelsOf = (xs: number[]): Tensor => raw.tensor(Int32Array.from(xs), [xs.length], 'i32', device());

/** max |got − want| relative to max |want| (floored, so an all-zero block is compared absolutely). */
async function expectClose(got: Tensor, want: Json, tol: number, label: string): Promise<void> {
  expect(got.shape, `${label} shape`).toEqual(want.shape);
  const data = await got.toArray();
  let scale = 1e-3;
  for (const w of want.data) scale = Math.max(scale, Math.abs(w));
  let worst = 0;
  want.data.forEach((w, i) => (worst = Math.max(worst, Math.abs(data[i] - w))));
  expect(worst / scale, `${label}: max error ${worst.toExponential(2)} at scale ${scale.toExponential(2)}`).toBeLessThanOrEqual(tol);
}

async function expectAllClose(got: readonly Tensor[], want: readonly Json[], tol: number, label: string): Promise<void> {
  expect(got.length, label).toBe(want.length);
  for (let i = 0; i < got.length; i++) await expectClose(got[i], want[i], tol, `${label}[${i}]`);
}

const linear = (x: Tensor, w: Tensor, b: Tensor): Tensor => ag.add(ag.matmul(x, w), b);
const dot = (xs: readonly Tensor[], ys: readonly Tensor[]): Tensor => xs.map((x, i) => ag.sum(ag.mul(x, ys[i]))).reduce((a, b) => ag.add(a, b));
const sgdStep = (ps: readonly Tensor[], gs: readonly Tensor[], lr: number): Tensor[] => ps.map((p, i) => ag.sub(p, ag.mulScalar(gs[i], lr)));

describe('PyTorch composite fixtures', () => {
  it('MLP (tanh, sigmoid) MSE loss: value, gradient, HVP by hvp() and by a reused HvpOperator', async () => {
    const c = fixture.cases['mlp-hvp'] as Case;
    await ag.expectNoLeaks(async () => {
      const x = T(c.inputs.x);
      const target = T(c.inputs.target);
      const params = (c.inputs.params as Json[]).map(P);
      const v = (c.inputs.v as Json[]).map(T);
      const f = (w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, w3: Tensor, b3: Tensor): Tensor =>
        raw.tidy(() => ag.mse(linear(ag.sigmoid(linear(ag.tanh(linear(x, w1, b1)), w2, b2)), w3, b3), target));
      const loss = f(...(params as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]));
      const g = ag.grad(loss, params);
      const hv = ag.hvp(f as (...t: Tensor[]) => Tensor, params, v);
      const op = new ag.HvpOperator(f as (...t: Tensor[]) => Tensor, params);
      const hv2 = [op.apply(v), op.apply(v)];
      op.dispose();
      await expectClose(loss, c.outputs.loss, FIRST, 'loss');
      await expectAllClose(g, c.outputs.grad, FIRST, 'grad');
      await expectAllClose(hv, c.outputs.hvp, SECOND, 'hvp');
      for (const h of hv2) await expectAllClose(h, c.outputs.hvp, SECOND, 'HvpOperator.apply');
      raw.dispose([x, target, params, v, loss, g, hv, hv2]);
    }, device());
  });

  it('softmax cross-entropy: HVP in the weights (hard labels) and in the logits (soft targets)', async () => {
    const c = fixture.cases['ce-hvp'] as Case;
    const i = c.inputs;
    await ag.expectNoLeaks(async () => {
      const x = T(i.x);
      const labels = labelsOf(i.labels);
      const [W, b] = [P(i.W), P(i.b)];
      const [vW, vb] = [T(i.vW), T(i.vb)];
      const loss = raw.tidy(() => ag.crossEntropy(linear(x, W, b), labels));
      const [gW, gb] = ag.grad(loss, [W, b], { createGraph: true });
      const [hW, hb] = raw.tidy(() => ag.grad(dot([gW, gb], [vW, vb]), [W, b]));
      await expectClose(loss, c.outputs.loss, FIRST, 'loss');
      await expectClose(gW, c.outputs.gW, FIRST, 'gW');
      await expectClose(gb, c.outputs.gb, FIRST, 'gb');
      await expectClose(hW, c.outputs.hW, SECOND, 'hW');
      await expectClose(hb, c.outputs.hb, SECOND, 'hb');

      const logits = P(i.logits);
      const soft = T(i.soft);
      const vl = T(i.vLogits);
      const softLoss = ag.softCrossEntropy(logits, soft);
      const [gl] = ag.grad(softLoss, [logits], { createGraph: true });
      const [hl] = ag.grad(gl, [logits], { gradOutputs: vl });
      await expectClose(softLoss, c.outputs.softLoss, FIRST, 'soft loss');
      await expectClose(gl, c.outputs.gLogits, FIRST, 'soft gLogits');
      await expectClose(hl, c.outputs.hLogits, SECOND, 'soft hLogits');
      raw.dispose([x, labels, W, b, vW, vb, loss, gW, gb, hW, hb, logits, soft, vl, softLoss, gl, hl]);
    }, device());
  });

  for (const c of fixture.cases['conv-mixed'] as Case[]) {
    const pool = { kernel: c.pool.kernel, stride: c.pool.stride, padding: c.pool.padding };
    it(`conv → ReLU → max-pool (${JSON.stringify(pool)}): gradients, H_ww v, mixed d/dx⟨∇_w L, v⟩ and d/dw⟨∇_x L, v⟩`, async () => {
      const i = c.inputs;
      await ag.expectNoLeaks(async () => {
        const [x, w, b] = [P(i.x), P(i.w), P(i.b)];
        const [cc, vx, vw, vb] = [T(i.c), T(i.vx), T(i.vw), T(i.vb)];
        const loss = raw.tidy(() => {
          const pre = ag.add(ag.conv2d(x, w), ag.reshape(b, [1, b.shape[0], 1, 1]));
          return ag.sum(ag.mul(cc, ag.tanh(ag.maxPool2d(ag.relu(pre), pool))));
        });
        const [gx, gw, gb] = ag.grad(loss, [x, w, b], { createGraph: true });
        const [hxw] = ag.grad(gw, [x], { gradOutputs: vw, retainGraph: true });
        const [hwx] = ag.grad(gx, [w], { gradOutputs: vx, retainGraph: true });
        const [hx, hw, hb] = ag.grad([gx, gw, gb], [x, w, b], { gradOutputs: [vx, vw, vb] });
        await expectClose(loss, c.outputs.loss, FIRST, 'loss');
        await expectClose(gx, c.outputs.gx, FIRST, 'gx');
        await expectClose(gw, c.outputs.gw, FIRST, 'gw');
        await expectClose(gb, c.outputs.gb, FIRST, 'gb');
        await expectClose(hxw, c.outputs.hxw, SECOND, 'd/dx <grad_w L, v_w>');
        await expectClose(hwx, c.outputs.hwx, SECOND, 'd/dw <grad_x L, v_x>');
        await expectClose(hx, c.outputs.hx, SECOND, '(Hv)_x');
        await expectClose(hw, c.outputs.hw, SECOND, '(Hv)_w');
        await expectClose(hb, c.outputs.hb, SECOND, '(Hv)_b');
        raw.dispose([x, w, b, cc, vx, vw, vb, loss, gx, gw, gb, hxw, hwx, hx, hw, hb]);
      }, device());
    });
  }

  it('Meta-Weight-Net T1–T2 step: look-ahead with createGraph, validation-loss gradient in the MWN parameters', async () => {
    const c = fixture.cases['mwn-t1t2'] as Case;
    const i = c.inputs;
    await ag.expectNoLeaks(async () => {
      const [xTr, yTr, xVal, yVal] = [T(i.xTrain), labelsOf(i.yTrain), T(i.xVal), labelsOf(i.yVal)];
      const theta = (i.theta as Json[]).map(P);
      const lambda = (i.lambda as Json[]).map(P);
      const classifier = ([w1, b1, w2, b2]: readonly Tensor[], x: Tensor): Tensor => linear(ag.tanh(linear(x, w1, b1)), w2, b2);
      const out = raw.tidy(() => {
        const perSample = ag.crossEntropy(classifier(theta, xTr), yTr, 'none');
        const n = perSample.shape[0];
        // The MWN reads the loss values as data, as in the fixture (and the paper's code).
        const [v1, c1, v2, c2] = lambda;
        const weights = ag.sigmoid(linear(ag.relu(linear(ag.reshape(ag.detach(perSample), [n, 1]), v1, c1)), v2, c2));
        const weighted = ag.mulScalar(ag.sum(ag.mul(ag.reshape(weights, [n]), perSample)), 1 / n);
        const g = ag.grad(weighted, theta, { createGraph: true });
        const ahead = sgdStep(theta, g, c.alpha);
        const valLoss = ag.crossEntropy(classifier(ahead, xVal), yVal);
        const hyper = ag.grad(valLoss, lambda);
        return { perSample, weights, weighted, ahead: ahead.map(ag.detach), valLoss, hyper };
      });
      await expectClose(out.perSample, c.outputs.perSample, FIRST, 'per-sample losses');
      await expectClose(out.weights, c.outputs.weights, FIRST, 'MWN weights');
      await expectClose(out.weighted, c.outputs.weightedLoss, FIRST, 'weighted loss');
      await expectAllClose(out.ahead, c.outputs.ahead, FIRST, 'look-ahead parameters');
      await expectClose(out.valLoss, c.outputs.valLoss, FIRST, 'validation loss');
      await expectAllClose(out.hyper, c.outputs.hypergrad, SECOND, 'hypergradient in λ');
      raw.dispose([xTr, yTr, xVal, yVal, theta, lambda, out]);
    }, device());
  });

  it('second-order MAML, three outer steps of 3 inner steps × 2 tasks: meta-losses, meta-gradients, final θ', async () => {
    const c = fixture.cases.maml as Case;
    await ag.expectNoLeaks(async () => {
      const tasks = (c.inputs.tasks as Record<string, Json>[]).map((t) => ({
        xs: T(t.xs),
        ys: T(t.ys),
        xq: T(t.xq),
        yq: T(t.yq),
      }));
      const regressor = ([w1, b1, w2, b2, w3, b3]: readonly Tensor[], x: Tensor): Tensor => linear(ag.tanh(linear(ag.tanh(linear(x, w1, b1)), w2, b2)), w3, b3);
      let theta = (c.inputs.theta as Json[]).map(T);
      const steps = c.outputs.steps as { metaLoss: Json; metaGrad: Json[] }[];
      for (let s = 0; s < steps.length; s++) {
        const leaves = theta.map((p) => ag.requiresGrad(ag.detach(p)));
        const { metaLoss, metaGrad } = raw.tidy(() => {
          const losses = tasks.slice(s * c.tasksPerStep, (s + 1) * c.tasksPerStep).map((task) => {
            let phi = leaves;
            for (let k = 0; k < c.innerSteps; k++) {
              const g = ag.grad(ag.mse(regressor(phi, task.xs), task.ys), phi, { createGraph: true });
              phi = sgdStep(phi, g, c.innerLr);
            }
            return ag.mse(regressor(phi, task.xq), task.yq);
          });
          const total = ag.mulScalar(
            losses.reduce((a, b) => ag.add(a, b)),
            1 / losses.length,
          );
          return { metaLoss: total, metaGrad: ag.grad(total, leaves) };
        });
        await expectClose(metaLoss, steps[s].metaLoss, UNROLLED, `step ${s} meta-loss`);
        await expectAllClose(metaGrad, steps[s].metaGrad, UNROLLED, `step ${s} meta-gradient`);
        const next = raw.tidy(() => theta.map((p, k) => raw.sub(p, raw.mulScalar(metaGrad[k], c.outerLr))));
        raw.dispose([leaves, metaLoss, metaGrad, theta]);
        theta = next;
      }
      await expectAllClose(theta, c.outputs.theta, UNROLLED, 'final θ');
      raw.dispose([theta, tasks]);
    }, device());
  });
});
