/**
 * @file The install smoke script: what a new user does with the packed packages installed by npm in a project
 * outside the repository (scripts/install-smoke.sh compiles it with tsc under NodeNext and Bundler and runs it with
 * plain `node`). Everything comes from the umbrella package `metagrad` and its `metagrad/node` entry. It also
 * type-checks in the workspace (`pnpm typecheck`). Exits non-zero with a message on the first failed check.
 */
import {
  Device,
  EvoGrad,
  NoAdapterError,
  add,
  compile,
  detach,
  exp,
  getDefaultDevice,
  grad,
  hvp,
  matmul,
  mean,
  mlp,
  mse,
  mul,
  requiresGrad,
  square,
  sub,
  sum,
  tensor,
  valueAndGrad,
  type BilevelProblem,
  type HypergradInput,
  type MlpParams,
  type ParamTree,
  type Tensor,
} from 'metagrad';
import { adapterFromEnv, createNodeDevice } from 'metagrad/node';
// The raw, non-recording ops sit behind their own entry (installed here as a direct dependency of the project).
import { add as rawAdd } from '@metagrad/tensor/raw';

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
  check(thrown instanceof NoAdapterError, 'an error from metagrad/node is instanceof NoAdapterError from metagrad (one copy of the errors module)');
  console.log(`    adapter: ${device.adapter.name}`);

  const t = tensor([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  check(t.shape.join() === '2,3' && close(await t.toArray(), [1, 2, 3, 4, 5, 6]), 'tensor() infers [2, 3] from nested arrays and reads back');
  check(close(await mul(2, add(t, 1)).toArray(), [4, 6, 8, 10, 12, 14]), 'numbers as operands: mul(2, add(t, 1))');
  const tracked = requiresGrad(tensor([1, 2]));
  check(add(tracked, tracked).requiresGrad && !rawAdd(tracked, tracked).requiresGrad, "metagrad's add records, @metagrad/tensor/raw's does not");

  // MLP gradient, jax style over the parameter tree, and torch style over its leaves: the same numbers.
  const model = mlp({ sizes: [3, 4, 1], activation: 'tanh' });
  const params = model.init(1);
  const x = tensor(
    Float32Array.from({ length: 12 }, (_, i) => Math.sin(i)),
    [4, 3],
  );
  const y = tensor([[0.5], [-0.5], [1], [0]]);
  const lossOf = (p: MlpParams, xb: Tensor, yb: Tensor): Tensor => mse(model.apply(p, xb), yb);
  const { value, grad: gTree } = valueAndGrad(lossOf)(params, x, y);
  check(Array.isArray(gTree) && gTree.length === params.length, 'valueAndGrad(loss)(params, x, y): a gradient tree shaped like params');
  const leaves = params.flatMap((layer) => Object.values(layer) as Tensor[]);
  for (const p of leaves) requiresGrad(p);
  const loss = lossOf(params, x, y);
  const grads = grad(loss, leaves);
  check(grads.length === leaves.length && grads.every((g, i) => g.shape.join() === leaves[i].shape.join()), 'MLP gradient has one tensor per parameter');
  const gAll = await Promise.all(grads.map((g) => g.toArray()));
  check(gAll.every((g) => Array.from(g).every(Number.isFinite)) && gAll.some((g) => Array.from(g).some((v) => v !== 0)), 'MLP gradient is finite and non-zero');
  const treeLeaves = gTree.flatMap((layer) => Object.values(layer) as Tensor[]);
  const same = await Promise.all(treeLeaves.map(async (g, i) => close(await g.toArray(), gAll[i])));
  check(same.every(Boolean) && close(await value.toArray(), await loss.toArray()), 'grad(f) over the tree equals grad(outputs, inputs) over the leaves');
  // Second derivative, jax style: d²/dx² Σ x³ = 6x.
  const d2 = grad(grad((a: Tensor) => sum(mul(square(a), a))))(tensor([0.5]));
  check(close(await d2.toArray(), [3]), 'grad(grad(f)) of Σx³ at 0.5 is 3');

  // HVP of f(w) = Σ w⁴: H = diag(12 w²), so H·v = 12 w² v.
  const w = requiresGrad(tensor([1, -2, 0.5], [3]));
  const v = tensor([1, 1, 2], [3]);
  const [hv] = hvp((a) => sum(square(square(a))), [w], [v]);
  check(close(await hv.toArray(), [12, 48, 6]), 'hvp of Σ w⁴ equals 12·w²·v');

  // One EvoGrad estimate on a weight-decay problem: L_T = mean((Xθ − y)²) + Σ exp(λ)·θ², L_V on other data.
  const data = (n: number, seed: number): Batch => ({
    x: tensor(
      Float32Array.from({ length: n * 3 }, (_, i) => Math.sin(seed * 13.7 + i * 1.93)),
      [n, 3],
    ),
    y: tensor(
      Float32Array.from({ length: n }, (_, i) => Math.cos(seed * 5.1 + i * 0.77)),
      [n, 1],
    ),
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
  check(h.length === 3 && Array.from(h).every(Number.isFinite) && Number.isFinite(estimate.valLoss), "EvoGrad estimate is finite with λ's shape");

  // compile: an SGD step on the MLP's loss, traced and then replayed; replays equal the eager step.
  const stepFn = (p0: Tensor, xb: Tensor, yb: Tensor) => {
    const p = requiresGrad(detach(p0));
    const l = mse(matmul(xb, p), yb);
    const [g] = grad(l, [p]);
    return { loss: detach(l), next: detach(sub(p, mul(g, tensor(0.1)))) };
  };
  const step = compile(stepFn);
  const p = tensor([0.2, 0.1, -0.3], [3, 1]);
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
