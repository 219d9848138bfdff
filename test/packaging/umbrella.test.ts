/**
 * @file The umbrella package `metagrad` (issue 17): it exports every name of @metagrad/autograd, models and meta,
 * the user-facing part of @metagrad/tensor, and no raw op; every name that exists in several packages resolves to
 * the one chosen on purpose (the list in packages/metagrad/src/index.ts); `metagrad/node` gives the Node helpers.
 */
import { describe, expect, it } from 'vitest';
import * as U from 'metagrad';
import * as UN from 'metagrad/node';
import * as T from '@metagrad/tensor';
import * as R from '@metagrad/tensor/raw';
import * as A from '@metagrad/autograd';
import * as M from '@metagrad/models';
import * as X from '@metagrad/meta';
import * as TN from '@metagrad/tensor/node';
import * as MN from '@metagrad/models/node';
import { useDevice } from '../helpers/device';

const device = useDevice();
const umbrella = U as Record<string, unknown>;
const sources: Record<string, Record<string, unknown>> = { autograd: A, models: M, meta: X };

describe('metagrad (umbrella)', () => {
  it('exports every name of @metagrad/autograd, models and meta', () => {
    const missing = Object.entries(sources).flatMap(([pkg, mod]) =>
      Object.keys(mod)
        .filter((n) => !(n in umbrella))
        .map((n) => `${pkg}.${n}`),
    );
    expect(missing).toEqual([]);
  });

  it('name clashes resolve as documented: only `cosine` differs between packages, and it is the LR schedule', () => {
    const clashes = Object.keys(umbrella).filter(
      (n) =>
        new Set(
          Object.values(sources)
            .filter((m) => n in m)
            .map((m) => m[n]),
        ).size > 1,
    );
    expect(clashes).toEqual(['cosine']);
    expect(U.cosine).toBe(M.cosine);
    expect(U.cosineSimilarity).toBe(X.cosineSimilarity);
    // models re-exports autograd's losses: one binding, no choice.
    expect(U.crossEntropy).toBe(A.crossEntropy);
    expect(U.mse).toBe(A.mse);
  });

  it('every op name that also exists as a raw op is the differentiable one; raw-only ops are not exported', () => {
    for (const n of Object.keys(R)) {
      if (n in umbrella && n in A) expect(umbrella[n], n).toBe((A as Record<string, unknown>)[n]);
    }
    for (const n of ['binary', 'unary', 'binaryScalar', 'maximumScalar', 'rdivScalar', 'planElementwise', 'mergeBatchDims'])
      expect(n in umbrella, n).toBe(false);
    expect(U.add).toBe(A.add);
    expect(U.add).not.toBe(R.add);
    expect(U.matmul).toBe(A.matmul);
    expect(U.grad).toBe(A.grad);
  });

  it('the user-facing part of @metagrad/tensor is the same binding (one Device class, one set of errors)', () => {
    for (const n of ['Device', 'Tensor', 'tensor', 'zeros', 'tidy', 'dispose', 'ShapeError', 'NoAdapterError', 'setFusion', 'normal']) {
      expect(umbrella[n], n).toBe((T as Record<string, unknown>)[n]);
    }
    // Kernel-writer helpers stay in their package.
    for (const n of ['UniformWriter', 'recordInto', 'checkTensors', 'Storage', 'BufferPool']) expect(n in umbrella, n).toBe(false);
  });

  it('metagrad/node: the tensor and models Node helpers, same bindings', () => {
    expect(Object.keys(UN).sort()).toEqual([...new Set([...Object.keys(TN), ...Object.keys(MN)])].sort());
    expect(UN.createNodeDevice).toBe(TN.createNodeDevice);
    expect(UN.WebGpuPackageMissingError).toBe(TN.WebGpuPackageMissingError);
    expect(UN.loadSafetensors).toBe(MN.loadSafetensors);
  });

  it('a quick start from the umbrella alone: nested-array tensor, numbers as operands, grad(f)', async () => {
    const { tensor, add, mul, sum, grad, dispose } = U;
    const x = tensor(
      [
        [1, 2],
        [3, 4],
      ],
      undefined,
      undefined,
      device(),
    );
    expect(x.shape).toEqual([2, 2]);
    const g = grad((a: U.Tensor) => sum(mul(2, add(a, 1))))(x);
    expect(Array.from(await g.toArray())).toEqual([2, 2, 2, 2]);
    dispose([x, g]);
  });
});
