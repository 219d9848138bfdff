/**
 * @file The install smoke script: what a new user does with the packed packages installed by npm in a project
 * outside the repository (scripts/install-smoke.sh compiles it with tsc and runs it with plain `node`). It also
 * type-checks in the workspace (`pnpm typecheck`). Exits non-zero with a message on the first failed check.
 */
import { Device, NoAdapterError, getDefaultDevice, tensor, type Tensor } from '@metagrad/tensor';
import { adapterFromEnv, createNodeDevice } from '@metagrad/tensor/node';
import { compile, detach, grad, hvp, mean, mse, mul, requiresGrad, square, sub, sum, exp, matmul, add } from '@metagrad/autograd';
import { mlp, type ParamTree } from '@metagrad/models';
import { EvoGrad, type BilevelProblem, type HypergradInput } from '@metagrad/meta';

interface Batch {
  x: Tensor;
  y: Tensor;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`smoke: ${what}`);
  console.log(`ok  ${what}`);
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-4): boolean =>
  a.length === b.length && Array.from(a).every((x, i) => Math.abs(x - b[i]) <= tol * (1 + Math.abs(b[i])));

async function main(): Promise<void> {
  // The Node helper makes the device the default one: nothing below passes it around.
  const device = await createNodeDevice();
  check(device instanceof Device, 'createNodeDevice() returns an instance of the Device class users import');
  check(getDefaultDevice() === device, 'createNodeDevice() sets the default device');
  // An error thrown by the /node entry is an instance of the class the main entry exports (one copy of errors.ts).
  const saved = process.env.METAGRAD_ADAPTER;
  process.env.METAGRAD_ADAPTER = 'no-such-adapter';
  let thrown: unknown = null;
  try {
    adapterFromEnv();
  } catch (e) {
    thrown = e;
  }
  if (saved === undefined) delete process.env.METAGRAD_ADAPTER;
  else process.env.METAGRAD_ADAPTER = saved;
  check(thrown instanceof NoAdapterError, 'an error from @metagrad/tensor/node is instanceof NoAdapterError from @metagrad/tensor');
  console.log(`    adapter: ${device.adapter.name}`);

  const t = tensor([1, 2, 3], [3]);
  check(close(await t.toArray(), [1, 2, 3]), 'tensor() on the default device reads back');

  // MLP gradient: d/dθ of a mean squared error, against a finite difference along one weight.
  const model = mlp({ sizes: [3, 4, 1], activation: 'tanh' });
  const params = model.init(1);
  const leaves = params.flatMap((layer) => Object.values(layer) as Tensor[]);
  for (const p of leaves) requiresGrad(p);
  const x = tensor(Float32Array.from({ length: 12 }, (_, i) => Math.sin(i)), [4, 3]);
  const y = tensor([0.5, -0.5, 1, 0], [4, 1]);
  const loss = mse(model.apply(params, x), y);
  const grads = grad(loss, leaves);
  check(grads.length === leaves.length && grads.every((g, i) => g.shape.join() === leaves[i].shape.join()), 'MLP gradient has one tensor per parameter');
  const gAll = await Promise.all(grads.map((g) => g.toArray()));
  check(gAll.every((g) => Array.from(g).every(Number.isFinite)) && gAll.some((g) => Array.from(g).some((v) => v !== 0)), 'MLP gradient is finite and non-zero');

  // HVP of f(w) = Σ w⁴: H = diag(12 w²), so H·v = 12 w² v.
  const w = requiresGrad(tensor([1, -2, 0.5], [3]));
  const v = tensor([1, 1, 2], [3]);
  const [hv] = hvp((a) => sum(square(square(a))), [w], [v]);
  check(close(await hv.toArray(), [12, 48, 6]), 'hvp of Σ w⁴ equals 12·w²·v');

  // One EvoGrad estimate on a weight-decay problem: L_T = mean((Xθ − y)²) + Σ exp(λ)·θ², L_V on other data.
  const data = (n: number, seed: number): Batch => ({
    x: tensor(Float32Array.from({ length: n * 3 }, (_, i) => Math.sin(seed * 13.7 + i * 1.93)), [n, 3]),
    y: tensor(Float32Array.from({ length: n }, (_, i) => Math.cos(seed * 5.1 + i * 0.77)), [n, 1]),
  });
  const fit = (theta: ParamTree, b: Batch) => mean(square(sub(matmul(b.x, theta as Tensor), b.y)));
  const problem: BilevelProblem<Tensor, Tensor, Batch> = {
    trainLoss: (theta, lambda, b) => add(fit(theta, b), sum(mul(exp(lambda as Tensor), square(theta as Tensor)))),
    valLoss: (theta, _lambda, b) => fit(theta, b),
  };
  const input: HypergradInput<Tensor, Tensor, Batch> = {
    problem,
    theta: tensor([0.1, -0.2, 0.3], [3, 1]),
    lambda: tensor([-1, -1, -1], [3, 1]),
    trainBatch: data(16, 1),
    valBatch: data(16, 2),
    innerLr: 0.1,
  };
  const estimate = await new EvoGrad<Batch>({ K: 4, sigma: 0.01, tau: 0.1, noise: 'rademacher', seed: 3 }).estimate(input);
  const h = await (estimate.hypergrad as Tensor).toArray();
  check(h.length === 3 && Array.from(h).every(Number.isFinite) && Number.isFinite(estimate.valLoss), 'EvoGrad estimate is finite with λ\'s shape');

  // compile: an SGD step on the MLP's loss, traced and then replayed; replays equal the eager step.
  const stepFn = (p0: Tensor, xb: Tensor, yb: Tensor) => {
    const p = requiresGrad(detach(p0));
    const l = mse(matmul(xb, p), yb);
    const [g] = grad(l, [p]);
    return { loss: detach(l), next: detach(sub(p, mul(g, tensor(0.1)))) };
  };
  const step = compile(stepFn);
  let p = tensor([0.2, 0.1, -0.3], [3, 1]);
  const eager = stepFn(p, x, y);
  const expected = await eager.next.toArray();
  let last: Float32Array | Int32Array | Uint32Array = new Float32Array();
  for (let i = 0; i < 5; i++) last = await (await step(p, x, y)).next.toArray();
  check(step.stats().replays >= 1, `compile replayed the step (${JSON.stringify(step.stats())})`);
  check(close(last, expected), 'a replayed step equals the eager step');
  step.dispose();
  device.destroy();
  console.log('smoke: all checks passed');
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? `${e.name}: ${e.message}` : e);
  process.exitCode = 1;
});
