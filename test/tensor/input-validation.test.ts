/** @file Host-side validation of the raw ops' JavaScript inputs (issue 14 item 7): named errors, nothing allocated. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as raw from '@metagrad/tensor/raw';
import { DisposedTensorError, DTypeError, InvalidArgumentError, KernelError, OutOfMemoryError, ShapeError, type Tensor } from '@metagrad/tensor';
import * as ref from '../../packages/tensor/src/reference/index';
import { useDevice } from '../helpers/device';

const device = useDevice();

/** Runs `f`, expecting `cls`, and checks that no tensor was left allocated by the failed call. */
function expectThrowsClean(f: () => unknown, cls: new (...args: never[]) => Error, message?: RegExp): void {
  const before = device().memory().liveTensors;
  let thrown: unknown;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, 'expected a throw').toBeInstanceOf(cls);
  if (message) expect((thrown as Error).message).toMatch(message);
  expect(device().memory().liveTensors, 'a tensor leaked from the failed call').toBe(before);
}

const read = async (t: Tensor) => {
  const data = Array.from(await t.toArray());
  const shape = [...t.shape];
  t.dispose();
  return { shape, data };
};

describe('tensor() from nested arrays (as torch.tensor / tf.tensor)', () => {
  it('infers the shape of nested arrays', async () => {
    expect(
      await read(
        raw.tensor(
          [
            [1, 2],
            [3, 4],
          ],
          undefined,
          undefined,
          device(),
        ),
      ),
    ).toEqual({ shape: [2, 2], data: [1, 2, 3, 4] });
    const cube = raw.tensor(
      [
        [[1], [2]],
        [[3], [4]],
        [[5], [6]],
      ],
      undefined,
      'i32',
      device(),
    );
    expect(cube.dtype).toBe('i32');
    expect(await read(cube)).toEqual({ shape: [3, 2, 1], data: [1, 2, 3, 4, 5, 6] });
    expect(await read(raw.tensor([new Float32Array([1, 2]), new Float32Array([3, 4])], undefined, undefined, device()))).toEqual({
      shape: [2, 2],
      data: [1, 2, 3, 4],
    });
    expect(await read(raw.tensor([[]], undefined, undefined, device()))).toEqual({ shape: [1, 0], data: [] });
    // An explicit shape must hold the same number of values.
    expect(
      await read(
        raw.tensor(
          [
            [1, 2],
            [3, 4],
          ],
          [4],
          undefined,
          device(),
        ),
      ),
    ).toEqual({ shape: [4], data: [1, 2, 3, 4] });
    expectThrowsClean(
      () =>
        raw.tensor(
          [
            [1, 2],
            [3, 4],
          ],
          [3],
          undefined,
          device(),
        ),
      ShapeError,
      /4 values/,
    );
  });

  it('rejects ragged arrays with a ShapeError showing the lengths', () => {
    expectThrowsClean(
      () =>
        raw.tensor(
          [
            [1, 2],
            [3, 4, 5],
          ],
          undefined,
          undefined,
          device(),
        ),
      ShapeError,
      /\[1\] has length 3.*length 2/,
    );
    expectThrowsClean(() => raw.tensor([[1, 2], 3] as never, undefined, undefined, device()), ShapeError, /\[1\]/);
    expectThrowsClean(() => raw.tensor([1, [2]] as never, undefined, undefined, device()), ShapeError, /\[1\]/);
  });

  it('keeps NaN and Infinity in f32 but rejects entries that are not numbers', async () => {
    const t = raw.tensor([NaN, Infinity, -Infinity], undefined, undefined, device());
    expect((await read(t)).data).toEqual([NaN, Infinity, -Infinity]);
    expectThrowsClean(() => raw.tensor([1, 'a'] as never, undefined, undefined, device()), DTypeError, /\[1\] is "a"/);
    expectThrowsClean(
      () =>
        raw.tensor(
          [
            [1, 2],
            [undefined, 4],
          ] as never,
          undefined,
          undefined,
          device(),
        ),
      DTypeError,
      /\[1\]\[0\] is undefined/,
    );
    // eslint-disable-next-line no-sparse-arrays
    expectThrowsClean(() => raw.tensor([1, undefined, 3] as never, undefined, undefined, device()), DTypeError);
    expectThrowsClean(() => raw.tensor('123' as never, undefined, undefined, device()), DTypeError);
    expectThrowsClean(() => raw.tensor(null as never, undefined, undefined, device()), DTypeError);
  });

  it('integer dtypes truncate as torch does but never wrap or turn NaN into 0', async () => {
    expect((await read(raw.tensor([1.7, -2.5], undefined, 'i32', device()))).data).toEqual([1, -2]);
    expectThrowsClean(() => raw.tensor([NaN], undefined, 'i32', device()), DTypeError, /NaN does not fit dtype i32/);
    expectThrowsClean(() => raw.tensor([2 ** 31], undefined, 'i32', device()), DTypeError);
    expectThrowsClean(() => raw.tensor([-1], undefined, 'u32', device()), DTypeError);
    expectThrowsClean(() => raw.full([2], 2 ** 32, 'u32', device()), DTypeError);
    expectThrowsClean(() => raw.full([2], 'x' as never, 'f32', device()), InvalidArgumentError);
  });
});

describe('unknown dtypes are a DTypeError listing the valid ones', () => {
  it.each([
    ['tensor', () => raw.tensor([1, 2], [2], 'f64' as never, device())],
    ['empty', () => raw.empty([2], 'f64' as never, device())],
    ['full', () => raw.full([2], 1, 'float32' as never, device())],
    ['zeros', () => raw.zeros([2], 'f16' as never, device())],
    ['ones', () => raw.ones([2], 'bool' as never, device())],
    ['arange', () => raw.arange(0, 4, 1, 'int64' as never, device())],
    ['eye', () => raw.eye(2, 2, 'f64' as never, device())],
  ])('%s', (_name, f) => expectThrowsClean(f, DTypeError, /f64|float32|f16|bool|int64.*valid dtypes are f32, i32, u32/));

  it('cast', () => {
    const x = raw.tensor([1, 2], [2], 'f32', device());
    expectThrowsClean(() => raw.cast(x, 'f64' as never), DTypeError, /valid dtypes are f32, i32, u32/);
    x.dispose();
  });
});

describe('integer arguments', () => {
  it('conv2d rejects fractional, negative and NaN strides, paddings, dilations and groups', () => {
    const x = raw.zeros([1, 2, 5, 5], 'f32', device());
    const w = raw.zeros([2, 2, 3, 3], 'f32', device());
    for (const opts of [
      { padding: 0.5 },
      { padding: -1 },
      { stride: 1.5 },
      { stride: 0 },
      { dilation: NaN },
      { groups: 1.5 },
      { groups: 0 },
      { padding: [1, 2, 3] as never },
      { stride: '2' as never },
    ]) {
      expectThrowsClean(() => raw.conv2d(x, w, opts), InvalidArgumentError);
    }
    expectThrowsClean(() => raw.conv2d(x, w, { groups: null as never }), InvalidArgumentError, /groups/);
    // Options that are not an object: [2, 2] meant as the stride was read as "no options".
    expectThrowsClean(() => raw.conv2d(x, w, [2, 2] as never), InvalidArgumentError, /options must be an object/);
    expectThrowsClean(() => raw.conv2d(x, w, 2 as never), InvalidArgumentError, /options must be an object/);
    expectThrowsClean(() => raw.conv2dInputGrad(x, w, [1, 2.5, 5, 5]), ShapeError);
    expectThrowsClean(() => raw.conv2dFilterGrad(x, x, [2, NaN, 3, 3]), ShapeError);
    raw.dispose([x, w]);
  });

  it('pools need a kernel and integer geometry', () => {
    const x = raw.zeros([1, 1, 4, 4], 'f32', device());
    for (const opts of [
      { kernel: 1.5 },
      { kernel: 2, stride: 0.5 },
      { kernel: 2, padding: 0.5 },
      { kernel: -2 },
      {} as never,
      undefined as never,
      2 as never,
      [2, 2] as never,
    ]) {
      expectThrowsClean(() => raw.maxPool2d(x, opts), InvalidArgumentError);
      expectThrowsClean(() => raw.avgPool2d(x, opts), InvalidArgumentError);
    }
    expectThrowsClean(() => raw.avgPool2dBackward(x, [1, 1, 4.5, 4], { kernel: 2 }), ShapeError);
    x.dispose();
  });

  it('resample sizes, creation sizes, random shapes and seeds', () => {
    const theta = raw.zeros([1, 2, 3], 'f32', device());
    expectThrowsClean(() => raw.affineGrid(theta, [1, 1, 2.5, 2]), ShapeError);
    theta.dispose();
    expectThrowsClean(() => raw.eye(2.5, 2, 'f32', device()), InvalidArgumentError);
    expectThrowsClean(() => raw.zeros([2, -1], 'f32', device()), ShapeError);
    expectThrowsClean(() => raw.zeros(3 as never, 'f32', device()), ShapeError);
    expectThrowsClean(() => raw.arange(0, Infinity, 1, 'f32', device()), InvalidArgumentError);
    expectThrowsClean(() => raw.arange(0, 1, 0, 'f32', device()), InvalidArgumentError);
    expectThrowsClean(() => raw.uniform([2, NaN], 1, { device: device() }), ShapeError);
    expectThrowsClean(() => raw.uniform([2], 1.5, { device: device() }), InvalidArgumentError);
    expectThrowsClean(() => raw.uniform([2], undefined as never, { device: device() }), InvalidArgumentError);
    expectThrowsClean(() => raw.normal([2], 1, { device: device(), std: -1 }), InvalidArgumentError);
    expectThrowsClean(() => raw.uniform([2], 1, { device: device(), low: 2, high: 1 }), InvalidArgumentError);
    expectThrowsClean(() => raw.permutation(2.5, 1, { device: device() }), ShapeError);
  });

  it('reduction axes must be integers in range', () => {
    const x = raw.zeros([2, 3], 'f32', device());
    for (const axes of [0.5, NaN, 2, -3, [0, 0], '1' as never]) expectThrowsClean(() => raw.sum(x, axes), ShapeError);
    expectThrowsClean(() => raw.softmax(x, 1.5), ShapeError);
    expectThrowsClean(() => raw.argmax(x, 2), ShapeError);
    // A missing axis used to mean axis 0 (a tfjs user expects the last axis): one explicit axis is required.
    expectThrowsClean(() => raw.softmax(x, undefined as never), ShapeError, /needs one axis/);
    expectThrowsClean(() => raw.logSoftmax(x, undefined as never), ShapeError, /needs one axis/);
    expectThrowsClean(() => raw.argmax(x, [1] as never), ShapeError, /needs one axis/);
    x.dispose();
  });
});

describe('devices and sizes given by the caller', () => {
  it('a device that is not a Device (a torch habit like "cpu") is an InvalidArgumentError', () => {
    for (const bad of ['cpu', 'cuda', null, {}]) {
      expectThrowsClean(() => raw.tensor([1, 2], undefined, undefined, bad as never), InvalidArgumentError, /device must be a Device/);
      expectThrowsClean(() => raw.zeros([2], 'f32', bad as never), InvalidArgumentError, /device must be a Device/);
      expectThrowsClean(() => raw.arange(0, 3, 1, 'f32', bad as never), InvalidArgumentError, /device must be a Device/);
      expectThrowsClean(() => raw.eye(2, 2, 'f32', bad as never), InvalidArgumentError, /device must be a Device/);
      expectThrowsClean(() => raw.uniform([2], 1, { device: bad as never }), InvalidArgumentError, /device must be a Device/);
      expectThrowsClean(() => raw.permutation(3, 1, { device: bad as never }), InvalidArgumentError, /device must be a Device/);
    }
  });

  it('a huge eye() is an OutOfMemoryError from the allocation, not a RangeError from its host array', () => {
    expectThrowsClean(() => raw.eye(1e6, 1e6, 'f32', device()), OutOfMemoryError);
    expectThrowsClean(() => raw.arange(0, 2 ** 31, 1, 'f32', device()), OutOfMemoryError);
  });
});

describe('options objects', () => {
  it('a typo or a positional habit is an InvalidArgumentError, not silently ignored', () => {
    const a = raw.zeros([2, 2], 'f32', device());
    const x = raw.zeros([1, 1, 3, 3], 'f32', device());
    const grid = raw.zeros([1, 2, 2, 2], 'f32', device());
    expectThrowsClean(() => raw.matmul(a, a, true as never), InvalidArgumentError, /options must be an object/);
    expectThrowsClean(() => raw.matmul(a, a, { transposeB: true } as never), InvalidArgumentError, /unknown option transposeB/);
    expectThrowsClean(() => raw.gridSample(x, grid, true as never), InvalidArgumentError, /options must be an object/);
    expectThrowsClean(
      () => raw.gridSample(x, grid, { alignCorner: true } as never),
      InvalidArgumentError,
      /unknown option alignCorner \(known: alignCorners\)/,
    );
    expectThrowsClean(() => raw.conv2d(x, x, { strides: 2 } as never), InvalidArgumentError, /unknown option strides/);
    expectThrowsClean(() => raw.maxPool2d(x, { kernel: 2, strides: 1 } as never), InvalidArgumentError, /unknown option strides/);
    expectThrowsClean(() => raw.uniform([2], 1, { device: device(), min: -1, max: 1 } as never), InvalidArgumentError, /unknown options min, max/);
    expectThrowsClean(() => raw.normal([2], 1, { device: device(), stddev: 2 } as never), InvalidArgumentError, /unknown option stddev/);
    expectThrowsClean(() => raw.permutation(3, 1, { device: device(), n: 3 } as never), InvalidArgumentError, /unknown option n/);
    // Flags must be booleans: 'false' or 1 would be read as true.
    expectThrowsClean(() => raw.sum(a, 0, 'false' as never), InvalidArgumentError, /keepDims must be true or false/);
    expectThrowsClean(() => raw.argmax(a, 0, 1 as never), InvalidArgumentError, /keepDims/);
    expectThrowsClean(() => raw.matmul(a, a, { transB: 'yes' } as never), InvalidArgumentError, /transB/);
    expectThrowsClean(() => raw.gridSample(x, grid, { alignCorners: 1 } as never), InvalidArgumentError, /alignCorners/);
    const theta = raw.zeros([1, 2, 3], 'f32', device());
    expectThrowsClean(() => raw.affineGrid(theta, [1, 1, 2, 2], 'true' as never), InvalidArgumentError, /alignCorners/);
    theta.dispose();
    raw.dispose([a, x, grid]);
  });
});

describe('operands that are not tensors, and scalars that are not numbers', () => {
  it('are an InvalidArgumentError naming the operand, not a raw TypeError', () => {
    const x = raw.zeros([2], 'f32', device());
    expectThrowsClean(() => raw.add(x, 2 as never), InvalidArgumentError, /b must be a Tensor, got 2/);
    expectThrowsClean(() => raw.matmul([[1]] as never, x), InvalidArgumentError);
    expectThrowsClean(() => raw.sum(undefined as never), InvalidArgumentError);
    expectThrowsClean(() => raw.mulScalar(x, '2' as never), InvalidArgumentError);
    expectThrowsClean(() => raw.axpby(1, x, undefined as never, x), InvalidArgumentError);
    expectThrowsClean(() => raw.unary('erf' as never, x), InvalidArgumentError, /unknown op "erf"/);
    const xi = raw.zeros([2], 'i32', device());
    expectThrowsClean(() => raw.addScalar(xi, 2 ** 40), DTypeError);
    raw.dispose([x, xi]);
  });
});

describe('no allocation before a throw', () => {
  it('an elementwise broadcast folding past the kernel rank throws without leaking its output', () => {
    // Alternating broadcast dims cannot be merged: rank 9 strided exceeds the elementwise kernel's rank 8.
    const a = raw.zeros([2, 1, 2, 1, 2, 1, 2, 1, 2], 'f32', device());
    const b = raw.zeros([1, 2, 1, 2, 1, 2, 1, 2, 1], 'f32', device());
    expectThrowsClean(() => raw.add(a, b), ShapeError);
    raw.dispose([a, b]);
  });

  it('matmul with an unknown kernel variant throws before allocating', () => {
    const a = raw.zeros([2, 2], 'f32', device());
    expectThrowsClean(() => raw.matmul(a, a, { variant: { kind: 'fast' } as never }), InvalidArgumentError, /variant/);
    a.dispose();
  });

  it('matmul with too many non-contiguous broadcast batch dims throws without leaking', () => {
    const a = raw.zeros([2, 1, 2, 1, 2, 1, 1, 1], 'f32', device());
    const b = raw.zeros([1, 2, 1, 2, 1, 2, 1, 1], 'f32', device());
    expectThrowsClean(() => raw.matmul(a, b), ShapeError, /batch dims/);
    raw.dispose([a, b]);
  });
});

/** Every op with tensor operands, as (operand shapes, call): used to dispose each operand in turn. */
const OPERAND_CASES: [string, number[][], (ts: Tensor[]) => Tensor][] = [
  ['add', [[2], [2]], ([a, b]) => raw.add(a, b)],
  ['where', [[2], [2], [2]], ([a, b, c]) => raw.where(a, b, c)],
  ['axpby', [[2], [2]], ([a, b]) => raw.axpby(1, a, 2, b)],
  ['sum', [[2]], ([a]) => raw.sum(a)],
  ['dot', [[2], [2]], ([a, b]) => raw.dot(a, b)],
  [
    'matmul',
    [
      [2, 2],
      [2, 2],
    ],
    ([a, b]) => raw.matmul(a, b),
  ],
  [
    'conv2d',
    [
      [1, 1, 3, 3],
      [1, 1, 2, 2],
    ],
    ([a, b]) => raw.conv2d(a, b),
  ],
  [
    'conv2dInputGrad',
    [
      [1, 1, 2, 2],
      [1, 1, 2, 2],
    ],
    ([a, b]) => raw.conv2dInputGrad(a, b, [1, 1, 3, 3]),
  ],
  [
    'conv2dFilterGrad',
    [
      [1, 1, 3, 3],
      [1, 1, 2, 2],
    ],
    ([a, b]) => raw.conv2dFilterGrad(a, b, [1, 1, 2, 2]),
  ],
  ['maxPool2d', [[1, 1, 2, 2]], ([a]) => raw.maxPool2d(a, { kernel: 2 })],
  [
    'maxPool2dBackward',
    [
      [1, 1, 1, 1],
      [1, 1, 2, 2],
    ],
    ([a, b]) => raw.maxPool2dBackward(a, b, { kernel: 2 }),
  ],
  ['avgPool2dBackward', [[1, 1, 1, 1]], ([a]) => raw.avgPool2dBackward(a, [1, 1, 2, 2], { kernel: 2 })],
  ['affineGrid', [[1, 2, 3]], ([a]) => raw.affineGrid(a, [1, 1, 2, 2])],
  [
    'gridSample',
    [
      [1, 1, 2, 2],
      [1, 2, 2, 2],
    ],
    ([a, b]) => raw.gridSample(a, b),
  ],
  [
    'gridSampleInputGrad',
    [
      [1, 1, 2, 2],
      [1, 2, 2, 2],
    ],
    ([a, b]) => raw.gridSampleInputGrad(a, b, [1, 1, 2, 2]),
  ],
  [
    'gridSampleGridGrad',
    [
      [1, 1, 2, 2],
      [1, 1, 2, 2],
      [1, 2, 2, 2],
    ],
    ([a, b, c]) => raw.gridSampleGridGrad(a, b, c),
  ],
];

describe('a disposed operand', () => {
  it.each(OPERAND_CASES)('%s: DisposedTensorError before anything is allocated', (_name, shapes, call) => {
    for (let dead = 0; dead < shapes.length; dead++) {
      const ts = shapes.map((s) => raw.zeros(s, 'f32', device()));
      ts[dead].dispose();
      expectThrowsClean(() => call(ts), DisposedTensorError, /was disposed/);
      raw.dispose(ts);
    }
  });
});

/** Single-operand and creation ops for the failed-dispatch test (besides OPERAND_CASES). */
const MORE_CASES: [string, number[][], (ts: Tensor[]) => Tensor][] = [
  ['mulScalar', [[5]], ([a]) => raw.mulScalar(a, 2)],
  ['cast', [[5]], ([a]) => raw.cast(a, 'i32')],
  ['argmax', [[3, 4]], ([a]) => raw.argmax(a, 1)],
  ['softmax', [[3, 4]], ([a]) => raw.softmax(a, 1)],
  ['mean over two axes', [[3, 4, 5]], ([a]) => raw.mean(a, [0, 2])],
  ['long sum (several passes)', [[40000]], ([a]) => raw.sum(a)],
  ['long dot (several passes)', [[40000], [40000]], ([a, b]) => raw.dot(a, b)],
  [
    'matmul with transposes (packing)',
    [
      [3, 5],
      [6, 5],
    ],
    ([a, b]) => raw.matmul(a, b, { transB: true, variant: { kind: 'register', rows: 4, cols: 4, wgX: 8, wgY: 4 } }),
  ],
  [
    'strided conv2dInputGrad (direct kernel)',
    [
      [1, 2, 2, 2],
      [2, 2, 3, 3],
    ],
    ([a, b]) => raw.conv2dInputGrad(a, b, [1, 2, 5, 5], { stride: 2 }),
  ],
  [
    'maxPool2dBackward stride 1',
    [
      [1, 1, 1, 1],
      [1, 1, 2, 2],
    ],
    ([a, b]) => raw.maxPool2dBackward(a, b, { kernel: 2, stride: 1 }),
  ],
  ['full', [], () => raw.full([3], 2, 'f32', device())],
  ['arange', [], () => raw.arange(0, 5, 1, 'f32', device())],
  [
    'tensor',
    [],
    () =>
      raw.tensor(
        [
          [1, 2],
          [3, 4],
        ],
        undefined,
        undefined,
        device(),
      ),
  ],
  ['uniform', [], () => raw.uniform([4], 1, { device: device() })],
  ['permutation', [], () => raw.permutation(9, 1, { device: device() })],
];

describe('a dispatch that fails midway (a kernel that does not build, a lost device)', () => {
  // Eager recording: each op dispatches at the call, whatever METAGRAD_FUSION says (fusion-on counterpart below).
  beforeAll(() => raw.setFusion(device(), false));
  afterAll(() => raw.setFusion(device(), undefined));

  it.each([...OPERAND_CASES, ...MORE_CASES])('%s frees its output and temporaries', (_name, shapes, call) => {
    const dev = device();
    const ts = shapes.map((s) => raw.zeros(s, 'f32', dev));
    // Count the op's recording steps (dispatches and uploads), then make each one fail in turn.
    const real = { dispatch: dev.dispatch.bind(dev), write: dev.write.bind(dev) };
    let calls = 0;
    let failAt = 0;
    const step =
      <A extends unknown[]>(f: (...args: A) => void) =>
      (...args: A) => {
        if (++calls === failAt) throw new KernelError('injected failure', 'test');
        f(...args);
      };
    const spies = [vi.spyOn(dev, 'dispatch').mockImplementation(step(real.dispatch)), vi.spyOn(dev, 'write').mockImplementation(step(real.write))];
    try {
      call(ts).dispose();
      const steps = calls;
      expect(steps).toBeGreaterThan(0);
      for (failAt = 1; failAt <= steps; failAt++) {
        calls = 0;
        expectThrowsClean(() => call(ts), KernelError, /injected/);
      }
    } finally {
      for (const spy of spies) spy.mockRestore();
      raw.dispose(ts);
    }
  });
});

describe('with fusion on, a dispatch that fails at realisation', () => {
  beforeAll(() => raw.setFusion(device(), true));
  afterAll(() => raw.setFusion(device(), undefined));
  const lazyCases = [...OPERAND_CASES, ...MORE_CASES].filter(([name]) => ['add', 'axpby', 'mulScalar'].includes(name));

  it.each(lazyCases)('%s throws there, returns its output buffers, stays pending and computes later', async (_name, shapes, call) => {
    const dev = device();
    const ts = shapes.map((s) => raw.ones(s, 'f32', dev));
    const eager = (() => {
      raw.setFusion(dev, false);
      try {
        return call(ts);
      } finally {
        raw.setFusion(dev, true);
      }
    })();
    const want = Array.from(await eager.toArray());
    eager.dispose();
    const real = dev.dispatch.bind(dev);
    let calls = 0;
    let failAt = 0; // 0: no failure
    const spy = vi.spyOn(dev, 'dispatch').mockImplementation((...args) => {
      if (++calls === failAt) throw new KernelError('injected failure', 'test');
      real(...args);
    });
    try {
      const probe = call(ts);
      expect(probe.storage.pending, 'the op should be lazy with fusion on').not.toBeNull();
      void probe.buffer;
      probe.dispose();
      const steps = calls;
      expect(steps).toBeGreaterThan(0);
      for (let k = 1; k <= steps; k++) {
        const y = call(ts);
        const before = dev.memory();
        calls = 0;
        failAt = k;
        expect(() => y.buffer).toThrow(/injected/);
        failAt = 0;
        expect(y.storage.pending, 'still pending after the failed realisation').not.toBeNull();
        const after = dev.memory();
        expect(after.bytesInUse).toBe(before.bytesInUse);
        expect(after.liveTensors).toBe(before.liveTensors);
        // The output buffers taken from the pool for the failed dispatch went back to it.
        expect(after.bytesAllocated - after.bytesPooled, 'output buffers returned to the pool').toBe(before.bytesAllocated - before.bytesPooled);
        expect(Array.from(await y.toArray())).toEqual(want);
        y.dispose();
      }
    } finally {
      spy.mockRestore();
      raw.dispose(ts);
    }
  });
});

describe('movement op arguments: the raw op and the float64 reference raise the same named error', () => {
  // Each case: the raw call, the same call on the reference, the class both must throw and the raw message.
  const x = () => raw.tensor([1, 2, 3, 4, 5, 6], [2, 3], 'f32', device());
  const rx: ref.RefTensor = { shape: [2, 3], data: Float64Array.of(1, 2, 3, 4, 5, 6) };
  const cases: [string, (t: Tensor) => unknown, () => unknown, new (...args: never[]) => Error, RegExp][] = [
    [
      'slice with a fractional start',
      (t) => raw.slice(t, [0.5], [2]),
      () => ref.slice(rx, [0.5], [2]),
      InvalidArgumentError,
      /slice: starts \[0.5\] holds 0.5 at 0, not an integer/,
    ],
    ['slice with a fractional end', (t) => raw.slice(t, [0, 0], [2, 1.5]), () => ref.slice(rx, [0, 0], [2, 1.5]), InvalidArgumentError, /slice: ends/],
    [
      'slice with NaN / Infinity bounds',
      (t) => raw.slice(t, [NaN], [Infinity]),
      () => ref.slice(rx, [NaN], [Infinity]),
      InvalidArgumentError,
      /slice: starts \[NaN\]/,
    ],
    [
      'slice with bounds that are not arrays',
      (t) => raw.slice(t, 0 as never, 2 as never),
      () => ref.slice(rx, 0 as never, 2 as never),
      InvalidArgumentError,
      /starts must be an array of integers, got 0/,
    ],
    [
      'slice with a string step',
      (t) => raw.slice(t, [0], [2], ['1'] as never),
      () => ref.slice(rx, [0], [2], ['1'] as never),
      InvalidArgumentError,
      /steps \["1"\]/,
    ],
    [
      'reshape to a bare number',
      (t) => raw.reshape(t, 3 as never),
      () => ref.reshape(rx, 3 as never),
      ShapeError,
      /reshape: shape must be an array of integers, got 3/,
    ],
    ['reshape with a string dim', (t) => raw.reshape(t, ['6'] as never), () => ref.reshape(rx, ['6'] as never), ShapeError, /reshape: shape \["6"\]/],
    ['permute with a non-array perm', (t) => raw.permute(t, 1 as never), () => ref.permute(rx, 1 as never), ShapeError, /permute: perm must be an array/],
    ['permute with a fractional axis', (t) => raw.permute(t, [0.5, 1]), () => ref.permute(rx, [0.5, 1]), ShapeError, /permute: perm \[0.5, 1\]/],
    [
      'transpose with a missing axis',
      (t) => raw.transpose(t, undefined as never, 1),
      () => ref.transpose(rx, undefined as never, 1),
      ShapeError,
      /transpose: axis undefined/,
    ],
    ['expand to a bare number', (t) => raw.expand(t, 4 as never), () => ref.expand(rx, 4 as never), ShapeError, /expand: shape must be an array/],
    ['expand with a fractional dim', (t) => raw.expand(t, [2, 2.5, 3]), () => ref.expand(rx, [2, 2.5, 3]), ShapeError, /expand: shape \[2, 2.5, 3\]/],
    ['flip with a bare axis', (t) => raw.flip(t, 0 as never), () => ref.flip(rx, 0 as never), ShapeError, /flip: axes must be an array, got 0/],
    ['flip with a repeated axis', (t) => raw.flip(t, [0, -2]), () => ref.flip(rx, [0, -2]), ShapeError, /flip: repeated axis in \[0, -2\]/],
    ['flip with a string axis', (t) => raw.flip(t, ['0'] as never), () => ref.flip(rx, ['0'] as never), ShapeError, /flip: axis "0" is out of range/],
    [
      'pad with a string value',
      (t) =>
        raw.pad(
          t,
          [
            [0, 0],
            [1, 1],
          ],
          '1' as never,
        ),
      () =>
        ref.pad(
          rx,
          [
            [0, 0],
            [1, 1],
          ],
          '1' as never,
        ),
      InvalidArgumentError,
      /pad: value must be a number, got "1"/,
    ],
    [
      'concat of a tensor and a number',
      (t) => raw.concat([t, 3 as never], 0),
      () => ref.concat([rx, 3 as never], 0),
      InvalidArgumentError,
      /concat: xs\[1\] must be a Tensor, got 3/,
    ],
    [
      'concat of a non-array',
      (t) => raw.concat(t as never, 0),
      () => ref.concat(rx as never, 0),
      InvalidArgumentError,
      /concat: xs must be an array of tensors/,
    ],
    [
      'concat on a string axis',
      (t) => raw.concat([t, t], '0' as never),
      () => ref.concat([rx, rx], '0' as never),
      ShapeError,
      /concat: axis "0" is out of range/,
    ],
    [
      'oneHot with a fractional class count',
      (t) => raw.oneHot(t, 2.5),
      () => ref.oneHot({ shape: [1, 3], data: Float64Array.of(0, 1, 0) }, 2.5),
      InvalidArgumentError,
      /oneHot: numClasses must be a positive integer/,
    ],
  ];
  for (const [what, run, runRef, cls, message] of cases) {
    it(what, () => {
      const t = what.startsWith('oneHot') ? raw.tensor([0, 1, 0], [1, 3], 'i32', device()) : x();
      expectThrowsClean(() => run(t), cls, message);
      expect(runRef).toThrow(cls);
      t.dispose();
    });
  }

  it('operands that are not tensors (gather(x, 0, undefined), oneHot(3)) name the operand', () => {
    const t = x();
    const index = raw.tensor([0, 1, 0], [1, 3], 'i32', device());
    expectThrowsClean(() => raw.gather(t, 0, undefined as never), InvalidArgumentError, /gather: index must be a Tensor, got undefined/);
    expectThrowsClean(() => raw.indexSelect([1, 2] as never, 0, t), InvalidArgumentError, /indexSelect: x must be a Tensor, got \[1, 2\]/);
    expectThrowsClean(() => raw.scatterAdd(t, 0, index, null as never), InvalidArgumentError, /scatterAdd: src must be a Tensor, got null/);
    expectThrowsClean(() => raw.oneHot(3 as never, 4), InvalidArgumentError, /oneHot: index must be a Tensor, got 3/);
    expectThrowsClean(() => raw.reshape(null as never, [1]), InvalidArgumentError, /reshape: x must be a Tensor/);
    expectThrowsClean(() => raw.flip('x' as never, [0]), InvalidArgumentError, /flip: x must be a Tensor/);
    raw.dispose([t, index]);
  });

  it('valid calls still work: slice with negative bounds, flip of distinct axes, reshape with -1', async () => {
    const t = x();
    expect(await read(raw.slice(t, [-1, 0], [2, 3], [1, 2]))).toEqual({ shape: [1, 2], data: [4, 6] });
    expect(await read(raw.flip(t, [0, 1]))).toEqual({ shape: [2, 3], data: [6, 5, 4, 3, 2, 1] });
    const v = raw.reshape(t, [-1]);
    expect(v.shape).toEqual([6]);
    v.dispose();
    t.dispose();
  });
});

describe('reference option parsing raises what the raw ops raise', () => {
  const rx: ref.RefTensor = { shape: [1, 1, 4, 4], data: new Float64Array(16) };
  const rw: ref.RefTensor = { shape: [1, 1, 3, 3], data: new Float64Array(9) };
  it('null or malformed pairs, typo’d keys, groups as a pair and non-boolean flags', () => {
    expect(() => ref.conv2d(rx, rw, { stride: null } as never)).toThrow(InvalidArgumentError);
    expect(() => ref.conv2d(rx, rw, { padding: '1' } as never)).toThrow(InvalidArgumentError);
    expect(() => ref.conv2d(rx, rw, { strides: 2 } as never)).toThrow(/unknown option strides/);
    expect(() => ref.conv2d(rx, rw, { groups: [1, 1] } as never)).toThrow(/groups must be a positive integer/);
    expect(() => ref.maxPool2d(rx, { kernel: null } as never)).toThrow(InvalidArgumentError);
    expect(() => ref.maxPool2d(rx, { kernel: 2, stride: null } as never)).toThrow(InvalidArgumentError);
    expect(() => ref.avgPool2d(rx, {} as never)).toThrow(InvalidArgumentError);
    expect(() => ref.matmul(rw, rw, { transB: 'true' } as never)).toThrow(/transB must be true or false/);
    expect(() => ref.matmul(rw, rw, true as never)).toThrow(/options must be an object/);
    expect(() => ref.sum(rw, [0], 'false' as never)).toThrow(/keepDims must be true or false/);
    expect(() => ref.gridSample(rx, { shape: [1, 2, 2, 2], data: new Float64Array(8) }, { alignCorner: true } as never)).toThrow(/unknown option alignCorner/);
    // The same calls on the raw ops, for the class.
    const x = raw.zeros([1, 1, 4, 4], 'f32', device());
    const w = raw.zeros([1, 1, 3, 3], 'f32', device());
    expectThrowsClean(() => raw.conv2d(x, w, { stride: null } as never), InvalidArgumentError);
    expectThrowsClean(() => raw.conv2d(x, w, { groups: [1, 1] } as never), InvalidArgumentError);
    expectThrowsClean(() => raw.maxPool2d(x, { kernel: 2, stride: null } as never), InvalidArgumentError);
    raw.dispose([x, w]);
  });
});

describe('reference reductions read axes as the raw ops do', () => {
  it('a bare axis is one axis; a string or an object is a ShapeError on both', async () => {
    const r: ref.RefTensor = { shape: [2, 3], data: Float64Array.of(1, 2, 3, 4, 5, 6) };
    expect(ref.sum(r, 1 as never)).toEqual({ shape: [2], data: Float64Array.of(6, 15) });
    const x = raw.tensor([1, 2, 3, 4, 5, 6], [2, 3], 'f32', device());
    expect(await read(raw.sum(x, 1))).toEqual({ shape: [2], data: [6, 15] });
    expect(() => ref.sum(r, { 0: 1 } as never)).toThrow(ShapeError);
    expectThrowsClean(() => raw.sum(x, { 0: 1 } as never), ShapeError);
    expect(() => ref.mean(r, ['1'] as never)).toThrow(ShapeError);
    expectThrowsClean(() => raw.mean(x, ['1'] as never), ShapeError);
    x.dispose();
  });
});

describe('reference scalar operands', () => {
  it("a scalar that is not a number is an InvalidArgumentError on the reference as on the raw op ('2' was concatenated)", () => {
    const r: ref.RefTensor = { shape: [2], data: Float64Array.of(1, 2) };
    const x = raw.tensor([1, 2], [2], 'f32', device());
    for (const [refCall, rawCall] of [
      [() => ref.addScalar(r, '2' as never), () => raw.addScalar(x, '2' as never)],
      [() => ref.mulScalar(r, null as never), () => raw.mulScalar(x, null as never)],
      [() => ref.powScalar(r, [2] as never), () => raw.powScalar(x, [2] as never)],
      [() => ref.axpby('1' as never, r, 1, r), () => raw.axpby('1' as never, x, 1, x)],
    ] as const) {
      expect(refCall).toThrow(InvalidArgumentError);
      expectThrowsClean(rawCall, InvalidArgumentError);
    }
    x.dispose();
  });
});
