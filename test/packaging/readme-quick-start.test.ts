/**
 * @file The README's umbrella quick start, run as written (only `console.log` collected into `lines`): the code
 * between the markers is the text proposed for README.md (issue 17), so it cannot rot unnoticed.
 */
import { expect, it } from 'vitest';

it('README quick start with the umbrella package: XOR by valueAndGrad, grad of grad, numbers as operands', async () => {
  const lines: string[] = [];
  const log = (...a: unknown[]) => lines.push(a.join(' '));
  // ---- README quick start (umbrella) ----
  const { createNodeDevice } = await import('metagrad/node');
  const { tensor, mlp, mse, valueAndGrad, grad, axpyTree, disposeTree, sum, mul, square, add } = await import('metagrad');

  const device = await createNodeDevice(); // hardware GPU, else llvmpipe, else SwiftShader: the default device from now on

  // XOR with a 2-16-1 tanh MLP, jax style: valueAndGrad over the parameter tree, plain gradient descent.
  const net = mlp({ sizes: [2, 16, 1], activation: 'tanh' });
  let params = net.init(0);
  const x = tensor([
    [0, 0],
    [0, 1],
    [1, 0],
    [1, 1],
  ]); // shape [4, 2], inferred from the nesting
  const y = tensor([[0], [1], [1], [0]]);
  const step = valueAndGrad((p: typeof params) => mse(net.apply(p, x), y));
  for (let i = 0; i <= 200; i++) {
    const { value, grad: g } = step(params);
    const next = axpyTree(-0.3, g, params); // θ ← θ − 0.3·∇θ
    disposeTree([params, g]);
    params = next;
    if (i % 100 === 0) log(`step ${i}: loss ${(await value.item()).toFixed(4)}`);
    value.dispose();
  }

  // Derivatives compose, and numbers mix with tensors: f(t) = Σ 2(t + 1)³.
  const f = (t: typeof x) => sum(mul(2, mul(square(add(t, 1)), add(t, 1))));
  const t = tensor([0.5]);
  log(`f'(0.5) = ${await grad(f)(t).item()}, f''(0.5) = ${await grad(grad(f))(t).item()}`); // 6(t+1)² = 13.5, 12(t+1) = 18
  device.destroy();
  // ---- end ----
  expect(lines[0]).toMatch(/^step 0: loss /);
  const first = Number(lines[0].split('loss ')[1]);
  const last = Number(lines[2].split('loss ')[1]);
  expect(last).toBeLessThan(first / 100);
  expect(lines[3]).toBe("f'(0.5) = 13.5, f''(0.5) = 18");
  console.log(lines.join('\n'));
});
