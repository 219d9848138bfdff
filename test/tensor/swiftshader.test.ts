/**
 * @file The second adapter: SwiftShader (Vulkan, from Debian's chromium) runs a small set of ops, a gradient and the
 * random streams against the float64 reference. Required under CI; skipped with a warning locally when absent.
 */
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import * as raw from '@metagrad/tensor/raw';
import type { Device, Tensor } from '@metagrad/tensor';
import { SWIFTSHADER_ICD_CANDIDATES, createNodeDevice } from '@metagrad/tensor/node';
import * as ag from '@metagrad/autograd';
import * as ref from '../../packages/tensor/src/reference/index';
import { describeWithPrerequisite } from '../helpers/prerequisite';

const icd = process.env.METAGRAD_SWIFTSHADER_ICD ?? SWIFTSHADER_ICD_CANDIDATES.find((p) => existsSync(p));
const present = icd !== undefined && existsSync(icd);

/** Max |got − want| / max(1, |want|). */
function worstError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i])));
  return worst;
}

/** Deterministic f32 data in [−1, 1). */
const data = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(k * 12.9898 + i * 78.233) * 0.999));

describeWithPrerequisite(
  'SwiftShader adapter',
  present,
  `SwiftShader's Vulkan ICD not found (looked in ${SWIFTSHADER_ICD_CANDIDATES.join(', ')}; install Debian's chromium: bash scripts/setup.sh --test)`,
  () => {
    let device: Device;
    beforeAll(async () => {
      device = await createNodeDevice({ adapter: 'swiftshader', setDefault: false });
    });
    afterAll(() => device?.destroy());

    const up = (a: Float32Array, shape: number[]): Tensor => raw.tensor(a, shape, 'f32', device);
    const values = async (t: Tensor): Promise<Float32Array> => {
      const a = (await t.toArray()) as Float32Array;
      t.dispose();
      return a;
    };

    it('is the SwiftShader adapter', () => {
      expect(device.adapter.name).toBe('swiftshader');
    });

    it('compares with NaN operands follow IEEE 754 (all false except ne), as the reference does', async () => {
      // SwiftShader may assume no NaNs: NaN != 0 came back false (a silently wrong mask) before the bit test.
      const a = Float32Array.from([NaN, 1, NaN, 2, 0]);
      const b = Float32Array.from([0, NaN, NaN, 2, -0]);
      const ra = ref.tensor(Array.from(a), [5]);
      const rb = ref.tensor(Array.from(b), [5]);
      for (const op of ['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const) {
        const got = Array.from(await values(raw[op](up(a, [5]), up(b, [5]))));
        expect(got, op).toEqual(Array.from(ref[op](ra, rb).data));
      }
    });

    it('matmul, exp, softmax, sum and conv2d match the float64 reference', async () => {
      const a = data(6 * 5, 1);
      const b = data(5 * 7, 2);
      const ra = ref.tensor(Array.from(a), [6, 5]);
      const rb = ref.tensor(Array.from(b), [5, 7]);
      const A = up(a, [6, 5]);
      const B = up(b, [5, 7]);
      // Measured on SwiftShader: matmul 7.4e-8, exp 1.4e-7, softmax 6.5e-8, sum 3.0e-8; tolerance 1e-6 (≥ 7×).
      expect(worstError(await values(raw.matmul(A, B)), ref.matmul(ra, rb).data)).toBeLessThan(1e-6);
      expect(worstError(await values(raw.exp(A)), ref.mapUnary(ra, Math.exp).data)).toBeLessThan(1e-6);
      expect(worstError(await values(raw.softmax(A, 1)), ref.softmax(ra, 1).data)).toBeLessThan(1e-6);
      expect(worstError(await values(raw.sum(A, [0])), ref.sum(ra, [0]).data)).toBeLessThan(1e-6);
      const x = data(2 * 3 * 6 * 6, 3);
      const w = data(4 * 3 * 3 * 3, 4);
      const X = up(x, [2, 3, 6, 6]);
      const W = up(w, [4, 3, 3, 3]);
      const want = ref.conv2d(ref.tensor(Array.from(x), [2, 3, 6, 6]), ref.tensor(Array.from(w), [4, 3, 3, 3]), {
        padding: 1,
      });
      // Measured 9.1e-7 (sums of 27 products); tolerance 3e-6.
      expect(worstError(await values(raw.conv2d(X, W, { padding: 1 })), want.data)).toBeLessThan(3e-6);
      raw.dispose([A, B, X, W]);
    });

    it('the gradient of sum(tanh(x W)) with respect to W is xᵀ(1 − tanh²(x W)) computed on the host', async () => {
      const x = data(4 * 3, 5);
      const w = data(3 * 2, 6);
      const X = up(x, [4, 3]);
      const W = ag.requiresGrad(up(w, [3, 2]));
      const loss = ag.sum(ag.tanh(ag.matmul(X, W)));
      const [gW] = ag.grad(loss, [W]);
      const want = new Float64Array(6);
      for (let r = 0; r < 4; r++) {
        for (let j = 0; j < 2; j++) {
          let z = 0;
          for (let k = 0; k < 3; k++) z += x[r * 3 + k] * w[k * 2 + j];
          const d = 1 - Math.tanh(z) ** 2;
          for (let k = 0; k < 3; k++) want[k * 2 + j] += x[r * 3 + k] * d;
        }
      }
      // Measured 1.2e-7; tolerance 1e-6.
      expect(worstError(await values(gW), want)).toBeLessThan(1e-6);
      raw.dispose([X, W, loss]);
    });

    it('Philox streams equal the reference bit for bit; normal() is within 1e-6 of it', async () => {
      const shape = [4, 1000];
      expect(Array.from(await values(raw.randomBits(shape, 11, { device })))).toEqual(Array.from(ref.randomBits(shape, 11).data));
      expect(Array.from(await values(raw.uniform(shape, 11, { device })))).toEqual(Array.from(ref.uniform(shape, 11).data));
      for (const seed of [3, 2 ** 40 + 1]) {
        const got = await values(raw.normal([65536], seed, { mean: 1, std: 2, offset: 1, device }));
        // Measured 3.7e-7 here, 4.7e-7 on both adapters over 5 × 2¹⁸ samples (8.65e-4 before cos(2πu) stopped using the GPU's
        // cos, which Vulkan only bounds to 2⁻¹¹ absolute); tolerance 1e-6.
        expect(worstError(got, ref.normal([65536], seed, { mean: 1, std: 2, offset: 1 }).data)).toBeLessThan(1e-6);
      }
    });
  },
);
