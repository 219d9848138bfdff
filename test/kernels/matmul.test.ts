/** @file matmul against the float64 reference: every variant forced, random shapes, transposes, broadcast batches. */
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import fc from 'fast-check';
import { createNodeDevice } from '@metagrad/tensor/node';
import {
  tensor,
  autotune,
  chooseMatmulVariant,
  fileTuningStore,
  matmulTuning,
  setTuningStore,
  ShapeError,
  DTypeError,
  type Device,
  type MatmulVariant,
  type MatmulTuning,
} from '@metagrad/tensor';
import { matmul, mergeBatchDims } from '@metagrad/tensor/raw';
import { defaultTuning, resetTuning } from '../../packages/tensor/src/autotune';
import { matmul as refMatmul } from '../../packages/tensor/src/reference/linalg';
import type { RefTensor } from '../../packages/tensor/src/reference/types';

let device: Device;
beforeAll(async () => {
  device = await createNodeDevice();
});
afterAll(() => device?.destroy());

const VARIANTS: Record<string, MatmulVariant | undefined> = {
  auto: undefined,
  simple: { kind: 'simple' },
  'register 8x16': { kind: 'register', rows: 8, cols: 16, wgX: 8, wgY: 4 },
  'register 4x8': { kind: 'register', rows: 4, cols: 8, wgX: 8, wgY: 4 },
  'register 4x4': { kind: 'register', rows: 4, cols: 4, wgX: 4, wgY: 2 },
  'register 1x4': { kind: 'register', rows: 1, cols: 4, wgX: 16, wgY: 1 },
  'workgroup 32': { kind: 'workgroup', tileM: 32, tileN: 32, tileK: 16, threadRows: 4, threadCols: 4 },
  'workgroup 64': { kind: 'workgroup', tileM: 64, tileN: 64, tileK: 16, threadRows: 4, threadCols: 4 },
};

let seed = 1;
function randomRef(shape: number[]): RefTensor {
  const n = shape.reduce((x, y) => x * y, 1);
  const data = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    data[i] = Math.fround((seed / 2 ** 32) * 2 - 1);
  }
  return { shape, data };
}

async function check(shapeA: number[], shapeB: number[], transA: boolean, transB: boolean, variant: MatmulVariant | undefined) {
  const A = randomRef(shapeA);
  const B = randomRef(shapeB);
  const want = refMatmul(A, B, { transA, transB });
  const a = tensor(Float32Array.from(A.data), shapeA, 'f32', device);
  const b = tensor(Float32Array.from(B.data), shapeB, 'f32', device);
  const c = matmul(a, b, { transA, transB, variant });
  expect(c.shape).toEqual(want.shape);
  const got = await c.toArray();
  const K = transA ? shapeA[shapeA.length - 2] : shapeA[shapeA.length - 1];
  const tol = 1e-6 + 3e-7 * K;
  for (let i = 0; i < got.length; i++) {
    if (!(Math.abs(got[i] - want.data[i]) <= tol)) {
      throw new Error(`${JSON.stringify({ shapeA, shapeB, transA, transB, variant })}: element ${i} is ${got[i]}, want ${want.data[i]}`);
    }
  }
  a.dispose();
  b.dispose();
  c.dispose();
}

const dim = fc.oneof(fc.constantFrom(1, 3, 4, 5, 8, 17, 33, 64), fc.integer({ min: 1, max: 40 }));

/** Batch shapes for A and B that broadcast: a common shape with dims dropped from the front or set to 1. */
const batches = fc
  .array(fc.integer({ min: 1, max: 3 }), { maxLength: 3 })
  .chain((common) =>
    fc.tuple(
      fc.constant(common),
      fc.array(fc.boolean(), { minLength: common.length, maxLength: common.length }),
      fc.array(fc.boolean(), { minLength: common.length, maxLength: common.length }),
      fc.nat(common.length),
      fc.nat(common.length),
    ),
  )
  .map(([common, oneA, oneB, dropA, dropB]) => [common.map((d, i) => (oneA[i] ? 1 : d)).slice(dropA), common.map((d, i) => (oneB[i] ? 1 : d)).slice(dropB)]);

const cases = fc.record({ M: dim, N: dim, K: dim, transA: fc.boolean(), transB: fc.boolean(), batch: batches });

describe('matmul matches the float64 reference', () => {
  for (const [name, variant] of Object.entries(VARIANTS)) {
    it(`${name}: random shapes, transposes and broadcast batches`, async () => {
      await fc.assert(
        fc.asyncProperty(cases, async ({ M, N, K, transA, transB, batch: [ba, bb] }) => {
          const shapeA = [...ba, ...(transA ? [K, M] : [M, K])];
          const shapeB = [...bb, ...(transB ? [N, K] : [K, N])];
          await check(shapeA, shapeB, transA, transB, variant);
        }),
        { numRuns: 20, seed: 42 + name.length },
      );
    });
  }

  it('fixed edge shapes for every variant', async () => {
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [1, 64, 64],
      [64, 1, 64],
      [64, 64, 1],
      [17, 33, 5],
      [96, 80, 72],
      [130, 20, 260],
    ];
    for (const variant of Object.values(VARIANTS)) {
      for (const [M, N, K] of shapes) {
        for (const [transA, transB] of [
          [false, false],
          [true, true],
        ] as const) {
          await check(transA ? [K, M] : [M, K], transB ? [N, K] : [K, N], transA, transB, variant);
        }
      }
    }
  });

  it('transB with K % 4 = 0 reads Bᵀ directly (no packing) for every register tile', async () => {
    const shapes: [number, number, number][] = [
      [128, 10, 256],
      [5, 7, 8],
      [33, 17, 12],
      [9, 64, 4],
      [40, 36, 20],
    ];
    for (const variant of Object.values(VARIANTS)) {
      if (variant?.kind !== 'register') continue;
      for (const [M, N, K] of shapes) {
        await check([M, K], [N, K], false, true, variant);
        await check([K, M], [N, K], true, true, variant);
      }
      // Broadcast batches on either side: the batch offset of Bᵀ must stay a whole number of vec4s.
      await check([2, 3, 6, 8], [3, 5, 8], false, true, variant);
      await check([7, 12], [2, 1, 9, 12], false, true, variant);
    }
  });

  it('K = 0 gives zeros, empty outputs are fine, and temporaries are released', async () => {
    const before = device.memory().liveTensors;
    const c = matmul(tensor(new Float32Array(0), [3, 0], 'f32', device), tensor(new Float32Array(0), [0, 5], 'f32', device));
    expect(Array.from(await c.toArray())).toEqual(new Array(15).fill(0));
    const e = matmul(tensor(new Float32Array(0), [0, 3, 4], 'f32', device), tensor(new Float32Array(12), [4, 3], 'f32', device));
    expect(e.shape).toEqual([0, 3, 3]);
    const r = matmul(tensor(new Float32Array(15), [3, 5], 'f32', device), tensor(new Float32Array(35), [7, 5], 'f32', device), {
      transB: true,
      variant: VARIANTS['register 8x16'],
    });
    expect(r.shape).toEqual([3, 7]);
    await r.toArray();
    // Three results plus six inputs stay alive; the packed temporaries were disposed.
    expect(device.memory().liveTensors - before).toBe(9);
  });

  it('splits dispatches above 65535 workgroups (long M, many batch items)', async () => {
    await check([600_000, 1], [1, 2], false, false, { kind: 'simple' });
    await check([70_000, 1, 2], [70_000, 2, 1], false, false, { kind: 'simple' });
  });
});

describe('matmul validation', () => {
  it('errors show both shapes', () => {
    const a = tensor(new Float32Array(6), [2, 3], 'f32', device);
    const b = tensor(new Float32Array(8), [4, 2], 'f32', device);
    expect(() => matmul(a, b)).toThrow(ShapeError);
    expect(() => matmul(a, b)).toThrow(/\[2, 3\].*\[4, 2\]/);
    expect(() => matmul(a, b, { transA: true })).toThrow(/\(2 vs 4\).*\[2, 3\]ᵀ @ \[4, 2\]/);
    expect(() => matmul(a.view([6]), b)).toThrow(/rank >= 2.*\[6\].*\[4, 2\]/);
    const c = tensor(new Float32Array(24), [2, 3, 4], 'f32', device);
    const d = tensor(new Float32Array(24), [3, 4, 2], 'f32', device);
    expect(() => matmul(c, d)).toThrow(/batch dims \[2\] and \[3\].*\[2, 3, 4\] @ \[3, 4, 2\]/);
    const i = tensor(new Int32Array(6), [3, 2], 'i32', device);
    expect(() => matmul(a, i)).toThrow(DTypeError);
  });

  it('merges contiguous batch dims', () => {
    expect(mergeBatchDims([2, 3, 4], [12, 4, 1], [12, 4, 1])).toEqual({ shape: [24], stridesA: [1], stridesB: [1] });
    expect(mergeBatchDims([2, 1, 3], [3, 0, 1], [0, 0, 0])).toEqual({ shape: [6], stridesA: [1], stridesB: [0] });
    expect(mergeBatchDims([2, 3], [3, 1], [0, 1])).toEqual({ shape: [2, 3], stridesA: [3, 1], stridesB: [0, 1] });
  });
});

describe('autotune', () => {
  it('defaults by adapter kind and shrinks register blocks for skinny outputs', () => {
    const soft = defaultTuning({ ...device.adapter, name: 'llvmpipe' });
    expect(soft.matmul.large.kind).toBe('register');
    const hw = defaultTuning({
      ...device.adapter,
      name: 'hardware',
      vendor: 'nvidia',
      device: 'rtx',
      description: 'd3d',
      isFallbackAdapter: false,
    });
    expect(hw.matmul.large.kind).toBe('workgroup');
    if (matmulTuning(device).matmul.large.kind === 'register') {
      const v = chooseMatmulVariant(device, { M: 1, N: 4096, K: 4096, batch: 1 });
      expect(v).toMatchObject({ kind: 'register', rows: 1 });
    }
  });

  it('measures, keeps the result per adapter and persists it through the injected store', async () => {
    const files = new Map<string, string>();
    setTuningStore(
      fileTuningStore({
        dir: '/cache/metagrad/',
        readFile: (p) => files.get(p) ?? '',
        writeFile: (p, t) => files.set(p, t),
        mkdir: () => {},
      }),
    );
    try {
      resetTuning(device);
      const t = await autotune(device, { classes: ['small'], reps: 1 });
      expect(t.measured).toBe(true);
      expect(Object.keys(t.timings!.small).length).toBeGreaterThan(2);
      const saved = JSON.parse(files.get('/cache/metagrad/tuning.json')!) as { entries: Record<string, MatmulTuning> };
      expect(saved.entries[t.adapterKey].matmul.small).toEqual(t.matmul.small);
      resetTuning(device);
      expect(matmulTuning(device)).toEqual(t); // reloaded from the store on first use
      expect(await autotune(device)).toBe(matmulTuning(device)); // cached: no re-measurement
    } finally {
      setTuningStore(null);
      resetTuning(device);
    }
  });
});
