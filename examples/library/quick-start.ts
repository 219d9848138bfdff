/** @file Quick start (kept identical to README's "Quick start (library)" block): learn an L2 strength by hypergradients. */
import { Adam, OneStepLookahead, OnlineTrainer, SGD, add, compile, dispose, dotTree, exp, mlp, mse, mul, normal, tensor, tidy } from 'metagrad';
import type { BilevelProblem, MlpParams, Tensor } from 'metagrad';
import { createNodeDevice } from 'metagrad/node';

const device = await createNodeDevice(); // hardware GPU, else llvmpipe, else SwiftShader
type Batch = { x: Tensor; y: Tensor };
const teacher = mlp({ sizes: [4, 8, 1], activation: 'tanh' }), teacherParams = teacher.init(99, device);
const data = (n: number, seed: number): Batch => tidy(() => {
  const x = normal([n, 4], seed, { device });
  return { x, y: add(teacher.apply(teacherParams, x), normal([n, 1], seed + 1, { std: 0.3, device })) };
});
const net = mlp({ sizes: [4, 32, 1], activation: 'tanh' });
const fit = (theta: MlpParams, b: Batch) => mse(net.apply(theta, b.x), b.y);
const problem: BilevelProblem<MlpParams, Tensor, Batch> = { // λ = log of the L2 strength: L_T = MSE + e^λ‖θ‖², L_V = MSE on held-out data
  trainLoss: (theta, lambda, b) => tidy(() => add(fit(theta, b), mul(exp(lambda), dotTree(theta, theta)))),
  valLoss: (theta, _lambda, b) => tidy(() => fit(theta, b)),
};
const theta = net.init(0, device), lambda = tensor([-4], [1], 'f32', device);
const trainer = new OnlineTrainer({
  problem, estimator: new OneStepLookahead(), theta, lambda, order: 'base-first', innerLr: 0.1,
  thetaOptimizer: new SGD(theta, { lr: 0.1 }), lambdaOptimizer: new Adam(lambda, { lr: 0.1 }),
});
const train = data(16, 1), val = data(128, 3);
for (let step = 0; step < 40; step++) await trainer.trainStep(train, val);
console.log(`log λ: -4 → ${(await lambda.item()).toFixed(3)}, validation MSE ${trainer.log.at(-1)!.valLoss.toFixed(4)}`);
// The trainer compiles its steps; compile your own: traced per input shape, then replayed as ONE GPU submit.
const heldOutMse = compile((b: Batch) => fit(theta, b));
const mses: number[] = [];
for (let i = 0; i < 6; i++) {
  const b = data(128, 10 + i), m = await heldOutMse(b);
  mses.push(await m.item());
  dispose([b, m]);
}
const { replays, dispatchesPerReplay } = heldOutMse.stats();
console.log(`held-out MSE ${mses.map((m) => m.toFixed(3)).join(' ')} (${replays} replays, ${dispatchesPerReplay} dispatches each)`);
device.destroy();
