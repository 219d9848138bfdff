/** @file The papers' networks against PyTorch golden fixtures (forward and backward), plus shape and option checks. */
import { describe, expect, it } from 'vitest';
import * as ag from '@metagrad/autograd';
import * as raw from '@metagrad/tensor';
import { InvalidArgumentError, ShapeError } from '@metagrad/tensor';
import * as ref from '../../packages/tensor/src/reference/index';
import type { RefTensor } from '../../packages/tensor/src/reference/index';
import {
  conv4,
  countParams,
  fromLeaves,
  disposeTree,
  featureWiseAffine,
  featureWiseTransform,
  resnetCifar,
  leaves,
  lenet5,
  metaWeightNet,
  mlp,
  namedLeaves,
  requiresGradTree,
  rotationMatrix,
  rotationTransformer,
  tanhRegressor,
} from '@metagrad/models';
import { useDevice } from '../helpers/device';
import { type Entry, checkGolden, expectClose, goldenCase, host, paramsFrom, upload } from './fixture-helpers';

const device = useDevice();

describe('mlp', () => {
  it('relu MLP matches torch (forward, gradients of weights and input)', async () => {
    const model = mlp({ sizes: [6, 8, 8, 3], activation: 'relu' });
    const like = model.init(1, device());
    const { params } = await checkGolden('mlpRelu', like, (p, { x }) => model.apply(p, x), { device: device() });
    disposeTree(like);
    disposeTree(params);
  });

  it('softplus hidden layer and sigmoid output match torch', async () => {
    const model = mlp({ sizes: [4, 5, 2], activation: 'softplus', outputActivation: 'sigmoid' });
    const like = model.init(2, device());
    const { params } = await checkGolden('mlpSoftplusSigmoid', like, (p, { x }) => model.apply(p, x), {
      device: device(),
    });
    disposeTree([like, params]);
  });

  it('init is seeded: same seed, same weights; another seed, other weights; torch-default bounds', async () => {
    const model = mlp({ sizes: [16, 4], activation: 'relu' });
    const [a, b, c] = [model.init(7, device()), model.init(7, device()), model.init(8, device())];
    const [wa, wb, wc] = await Promise.all([a[0].weight.toArray(), b[0].weight.toArray(), c[0].weight.toArray()]);
    expect(wa).toEqual(wb);
    expect(wa).not.toEqual(wc);
    // kaiming_uniform(a=√5) on fan_in 16: U(−1/4, 1/4), for the bias too.
    expect(Math.max(...wa.map(Math.abs))).toBeLessThanOrEqual(0.25);
    expect(Math.max(...wa.map(Math.abs))).toBeGreaterThan(0.2);
    disposeTree([a, b, c]);
  });

  it('rejects bad sizes and mismatched parameter trees with the values', () => {
    expect(() => mlp({ sizes: [3], activation: 'relu' })).toThrow(/sizes needs input and output/);
    expect(() => mlp({ sizes: [3, 0], activation: 'relu' })).toThrow(InvalidArgumentError);
    const model = mlp({ sizes: [3, 2], activation: 'tanh' });
    const p = model.init(0, device());
    const x = raw.zeros([2, 4], 'f32', device());
    expect(() => model.apply(p, x)).toThrow(ShapeError);
    expect(() => model.apply(p, x)).toThrow(/\[2, 4\]/);
    disposeTree([p, x]);
  });
});

describe('tanhRegressor', () => {
  it('is a 2-hidden-layer tanh MLP matching torch', async () => {
    const model = tanhRegressor({ inputs: 2, outputs: 1 });
    const like = model.init(3, device());
    expect(countParams(like)).toBe(2 * 32 + 32 + 32 * 32 + 32 + 32 + 1);
    const { params } = await checkGolden('tanhRegressor', like, (p, { x }) => model.apply(p, x), { device: device() });
    disposeTree([like, params]);
  });
});

describe('metaWeightNet', () => {
  for (const [name, floor] of [
    ['metaWeightNet', 0],
    ['metaWeightNetFloor', 0.1],
  ] as const) {
    it(`${name}: losses [N,1] → weights [N,1] match torch`, async () => {
      const model = metaWeightNet({ hidden: 100, floor });
      const like = model.init(4, device());
      const { params } = await checkGolden(name, like, (p, { x }) => model.apply(p, x), { device: device() });
      disposeTree([like, params]);
    });
  }

  it('floor bounds the weights from below; bad floors and inputs are refused', async () => {
    const model = metaWeightNet({ floor: 0.3 });
    const p = model.init(5, device());
    const losses = raw.tensor([0, 1, 5, 100], [4, 1], 'f32', device());
    const w = model.apply(p, losses);
    for (const v of await w.toArray()) expect(v).toBeGreaterThanOrEqual(0.3 - 1e-6);
    expect(() => metaWeightNet({ floor: 1 })).toThrow(/floor must be in \[0, 1\), got 1/);
    expect(() => model.apply(p, raw.zeros([4], 'f32', device()))).toThrow(/\[N, 1\]/);
    disposeTree([p, losses, w]);
  });
});

describe('lenet5', () => {
  it('matches torch on 14×14 inputs (forward and every gradient)', async () => {
    const model = lenet5({ imageSize: 14 });
    const like = model.init(6, device());
    const { params } = await checkGolden('lenet5', like, (p, { x }) => model.apply(p, x), { device: device() });
    disposeTree([like, params]);
  });

  it('sizes its first dense layer from the image size and rejects tiny images', () => {
    const p = lenet5().init(0, device());
    expect(p.fc1.weight.shape).toEqual([120, 16 * 5 * 5]);
    expect(countParams(p)).toBe(61706); // the classic LeNet-5 count for 28×28 inputs with padding 2
    expect(() => lenet5({ imageSize: 10 })).toThrow(/imageSize 10 is too small/);
    disposeTree(p);
  });
});

describe('rotationTransformer', () => {
  it('matches torch affine_grid + grid_sample: output, gradients, and the second derivative in the angle', async () => {
    const model = rotationTransformer();
    const like = model.init(0, device());
    const { params, case: c } = await checkGolden('rotationTransformer', like, (p, { x }) => model.apply(p, x), {
      device: device(),
    });
    // d²/dangle² ⟨cot, rotate(x, angle)⟩ by grad of grad.
    const x = upload(c.inputs.x, device());
    const cot = upload(c.cotangent, device());
    const angle = ag.requiresGrad(upload(c.params.angle, device()));
    const out = model.apply({ angle }, x);
    const loss = ag.sum(ag.mul(out, cot));
    const [d1] = ag.grad(loss, angle, { createGraph: true });
    const [d2] = ag.grad(d1, angle);
    expectClose(await d1.toArray(), host(c.grads.angle), 'first derivative', 1e-4);
    expectClose(await d2.toArray(), host(c.second!.angle), 'second derivative', 1e-3);
    raw.dispose([like, params, x, cot, angle, out, loss, d1, d2]);
  });

  it('passes gradgradcheck in the angle against the float64 reference', async () => {
    const thetaRef = (angle: RefTensor, n: number): RefTensor => {
      const [c, s] = [Math.cos(angle.data[0]), Math.sin(angle.data[0])];
      const row = [c, -s, 0, s, c, 0];
      return { shape: [n, 2, 3], data: Float64Array.from({ length: 6 * n }, (_, i) => row[i % 6]) };
    };
    const shape = [2, 1, 5, 5];
    const image = { shape, data: Float64Array.from({ length: 50 }, (_, i) => Math.sin(1.3 * i) + 0.1 * (i % 7)) };
    const f = {
      gpu: (angle: raw.Tensor, x: raw.Tensor) => rotationTransformer().apply({ angle }, x),
      ref: (angle: { shape: readonly number[]; data: Float64Array }, x: { shape: readonly number[]; data: Float64Array }) =>
        ref.gridSample(x as RefTensor, ref.affineGrid(thetaRef(angle as RefTensor, 2), shape)),
    };
    const inputs = [{ shape: [1], data: Float64Array.from([0.37]) }, image];
    const first = await ag.gradcheck(f, inputs, { raise: false, device: device() });
    expect(first.failures).toEqual([]);
    const second = await ag.gradgradcheck(f, inputs, { raise: false, device: device(), wrt: [0] });
    expect(second.failures).toEqual([]);
  });

  it('angle 0 is the identity and π/2 is a quarter turn; rotationMatrix checks its input', async () => {
    const model = rotationTransformer();
    const p = model.init(0, device());
    const data = Float32Array.from({ length: 16 }, (_, i) => i);
    const x = raw.tensor(data, [1, 1, 4, 4], 'f32', device());
    const same = model.apply(p, x);
    expectClose(await same.toArray(), data, 'identity', 1e-6);
    const quarter = rotationTransformer({ initialAngle: Math.PI / 2 }).init(0, device());
    const turned = await model.apply(quarter, x).toArray();
    // Sampling at (x', y') = (−y, x): out[i][j] = in[j][W−1−i] (torch's convention, pixel centres map exactly).
    const expected = Float32Array.from({ length: 16 }, (_, k) => data[(k % 4) * 4 + (3 - Math.floor(k / 4))]);
    expectClose(turned, expected, 'quarter turn', 1e-5, 1e-4);
    expect(() => rotationMatrix(raw.zeros([2], 'f32', device()))).toThrow(/one value/);
    raw.dispose([p, x, same, quarter]);
  });
});

describe('conv4', () => {
  it('matches torch in training mode (batch statistics) with 8 filters on 16×16 inputs', async () => {
    const model = conv4({ inChannels: 1, hidden: 8, classes: 5, imageSize: 16 });
    const like = model.init(7, device());
    const { params } = await checkGolden('conv4', like, (p, { x }) => model.apply(p, x, { training: true }), {
      device: device(),
    });
    disposeTree([like, params]);
  });

  it('keeps running statistics in the state only when given one; eval needs it', async () => {
    const model = conv4({ inChannels: 1, hidden: 4, classes: 3, imageSize: 16 });
    const p = model.init(8, device());
    const state = model.initState(device());
    const x = raw.uniform([2, 1, 16, 16], 3, { device: device() });
    const y = model.apply(p, x, { training: true, state });
    expect(y.shape).toEqual([2, 3]);
    expect(state[0].batchesTracked).toBe(1);
    expect(Array.from(await state[0].runningMean.toArray()).some((v) => v !== 0)).toBe(true);
    expect(() => model.apply(p, x)).toThrow(/eval mode needs the running statistics/);
    const yEval = model.apply(p, x, { state });
    expect(yEval.shape).toEqual([2, 3]);
    expect(() => conv4({ imageSize: 8 })).toThrow(/imageSize 8 is too small/);
    raw.dispose([p, state.map((s) => [s.runningMean, s.runningVar]), x, y, yEval]);
  });
});

describe('second order through conv4 (MAML)', () => {
  it('Hessian-vector product in the parameters matches torch (conv, batch norm, ReLU, max-pool double backward)', async () => {
    const model = conv4({ inChannels: 1, hidden: 8, classes: 5, imageSize: 16 });
    const like = model.init(12, device());
    const c = goldenCase('conv4');
    const second = c.second as unknown as { v: Record<string, Entry>; hv: Record<string, Entry> };
    const params = paramsFrom(c, like, device());
    const names = Object.keys(namedLeaves(params));
    const x = upload(c.inputs.x, device());
    const cot = upload(c.cotangent, device());
    const v = names.map((k) => upload(second.v[k], device()));
    const f = (...ps: raw.Tensor[]) => ag.sum(ag.mul(model.apply(fromLeaves(params, ps), x, { training: true }), cot));
    const hv = ag.hvp(f, leaves(params), v);
    for (let i = 0; i < names.length; i++) {
      expectClose(await hv[i].toArray(), host(second.hv[names[i]]), `H·v for ${names[i]}`, 5e-3, 1e-4);
    }
    raw.dispose([like, params, x, cot, v, hv]);
  });
});

describe('resnetCifar', () => {
  it('ResNet-8 (width ×0.25) matches torch with option-A shortcuts in training mode', async () => {
    const model = resnetCifar({ depth: 8, width: 0.25 });
    const like = model.init(9, device());
    const { params } = await checkGolden('resnet8', like, (p, { x }) => model.apply(p, x, { training: true }), {
      device: device(),
    });
    disposeTree([like, params]);
  });

  it('ResNet-20 has 0.27 M parameters and maps [2,3,8,8] to [2,10]; ResNet-32 ×2 has 1.85 M', () => {
    const model = resnetCifar({ depth: 20 });
    const p = model.init(10, device());
    expect(countParams(p)).toBe(269722); // He et al.'s 0.27 M (torch's count for the same module)
    expect(p.blocks.length).toBe(9);
    const state = model.initState(device());
    expect(state.length).toBe(19);
    const x = raw.uniform([2, 3, 8, 8], 4, { device: device() });
    const y = ag.noGrad(() => model.apply(p, x, { training: true, state }));
    expect(y.shape).toEqual([2, 10]);
    expect(state.every((s) => s.batchesTracked === 1)).toBe(true);
    const wide = resnetCifar({ depth: 32, width: 2 }).init(11, device());
    expect(countParams(wide)).toBe(1849898);
    expect(() => resnetCifar({ depth: 21 })).toThrow(/6n \+ 2.*got 21/);
    raw.dispose([p, wide, state.map((s) => [s.runningMean, s.runningVar]), x, y]);
  });
});

describe('featureWiseTransform', () => {
  it('γ = 1 + ε·softplus(θγ), β = ε·softplus(θβ) matches torch for the same noise', async () => {
    const like = featureWiseTransform({ channels: 4 }).init(0, device());
    const c = goldenCase('featureWiseTransform');
    const ng = upload(c.noise!.gamma, device());
    const nb = upload(c.noise!.beta, device());
    const { params } = await checkGolden('featureWiseTransform', like, (p, { x }) => featureWiseAffine(p, x, ng, nb), {
      device: device(),
    });
    raw.dispose([like, params, ng, nb]);
  });

  it('samples per seed in training, is the identity in eval, and starts at θγ = 0.3, θβ = 0.5', async () => {
    const model = featureWiseTransform({ channels: 3 });
    const p = model.init(0, device());
    expect(Array.from(await p.gamma.toArray())).toEqual([0.3, 0.3, 0.3].map(Math.fround));
    const x = raw.uniform([2, 3, 2, 2], 5, { device: device() });
    const [a, b, c, e] = [
      model.apply(p, x, { training: true, seed: 1 }),
      model.apply(p, x, { training: true, seed: 1 }),
      model.apply(p, x, { training: true, seed: 2 }),
      model.apply(p, x),
    ];
    const [va, vb, vc, ve, vx] = await Promise.all([a, b, c, e, x].map((t) => t.toArray()));
    expect(va).toEqual(vb);
    expect(va).not.toEqual(vc);
    expect(ve).toEqual(vx);
    expect(() => model.apply(p, x, { training: true })).toThrow(/needs ctx.seed/);
    raw.dispose([p, x, a, b, c, e]);
  });
});

describe('memory', () => {
  it('apply + grad of every model frees everything it made', async () => {
    const cases = [
      { model: conv4({ inChannels: 1, hidden: 4, classes: 3, imageSize: 16 }), x: [2, 1, 16, 16] },
      { model: resnetCifar({ depth: 8, width: 0.25 }), x: [2, 3, 8, 8] },
      { model: lenet5({ imageSize: 14 }), x: [2, 1, 14, 14] },
      { model: metaWeightNet({ floor: 0.05 }), x: [3, 1] },
      { model: rotationTransformer({ initialAngle: 0.2 }), x: [2, 1, 5, 5] },
    ] as const;
    for (const { model, x: shape } of cases) {
      const m = model as unknown as {
        init(s: number, d: raw.Device): never;
        apply(p: never, x: raw.Tensor, ctx?: object): raw.Tensor;
      };
      const params = m.init(1, device());
      const x = raw.uniform([...shape], 2, { device: device() });
      await ag.expectNoLeaks(() => {
        const tracked = requiresGradTree(params);
        raw.tidy(() => {
          ag.grad(ag.sum(m.apply(tracked as never, x, { training: true })), leaves(tracked));
        });
        disposeTree(tracked);
      }, device());
      raw.dispose([params, x]);
    }
  });
});
