/** @file The one kernel renderer: derived bindings, minimal helper preamble, stable keys, and every kernel compiles. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ARITH_OP_NAMES,
  COMPARE_OP_NAMES,
  INT_BINARY_OPS,
  INT_UNARY_OPS,
  MAX_ELEMENTWISE_RANK,
  MOVEMENT_MAX_RANK,
  RANDOM_OP_NAMES,
  REDUCE_OP_NAMES,
  UNARY_OP_NAMES,
  WGSL_HELPERS,
  axpbyKernel,
  avgPool2dBackwardKernel,
  avgPool2dKernel,
  affineGridKernel,
  axpyKernel,
  blockCopyKernel,
  bitonicStepKernel,
  conv2dDirectKernel,
  conv2dFilterGradKernel,
  conv2dFilterGradWindowKernel,
  conv2dRowKernel,
  convPackFilterKernel,
  convSumSplitsKernel,
  binaryKernel,
  castKernel,
  fillKernel,
  fixedPointToF32Kernel,
  gatherKernel,
  gridSampleGridGradKernel,
  gridSampleInputGradScatterKernel,
  gridSampleKernel,
  helpersUsed,
  indexBoundsKernel,
  indexSelectKernel,
  maxPool2dBackwardKernel,
  maxPool2dBackwardTileKernel,
  maxPool2dKernel,
  matmulKernel,
  matmulPackKernel,
  oneHotKernel,
  permutationIndicesKernel,
  permutationKeysKernel,
  randomKernel,
  reduceKernel,
  reluGradKernel,
  renderKernel,
  scatterAddKernel,
  softmaxKernel,
  stridedCopyKernel,
  unaryKernel,
  whereKernel,
  type DType,
  type ElementwiseLayout,
  type KernelIR,
  type KernelSpec,
  type ReduceLayout,
} from '@metagrad/kernels-wgsl';
import { createNodeDevice } from '@metagrad/tensor/node';
import { adamKernel, sgdKernel } from '../../packages/models/src/optim/kernels';
import * as ops from '@metagrad/tensor/raw';
import type { Device } from '@metagrad/tensor';

let device: Device;
beforeAll(async () => {
  device = await createNodeDevice();
});
afterAll(() => device?.destroy());

const DTYPES: DType[] = ['f32', 'i32', 'u32'];
const LAYOUTS: ElementwiseLayout[] = [
  { kind: 'vec4', operands: ['full', 'full'] },
  { kind: 'vec4', operands: ['full', 'scalar'] },
  { kind: 'vec4', operands: ['scalar', 'full'] },
  { kind: 'vec4', operands: ['full', 'uniform'] },
  { kind: 'vec4', operands: ['uniform', 'full'] },
  ...Array.from({ length: MAX_ELEMENTWISE_RANK }, (_, r) => ({ kind: 'strided', rank: r + 1 }) as const),
];

/** Every kernel of the families on the renderer: each op × dtype once, each layout with add and where; reductions;
 * random; movement and the index-checked kernels; pooling; spatial resampling; convolution; matmul; optimiser updates. */
function renderedSpecs(): KernelSpec[] {
  const specs: KernelSpec[] = [fillKernel({ dtype: 'f32' }), fillKernel({ dtype: 'i32' }), fillKernel({ dtype: 'u32' }), axpyKernel(), axpbyKernel()];
  for (const op of UNARY_OP_NAMES) {
    specs.push(unaryKernel({ op, dtype: 'f32' }));
    if (INT_UNARY_OPS.includes(op)) specs.push(unaryKernel({ op, dtype: 'i32' }));
  }
  for (const op of [...ARITH_OP_NAMES, ...COMPARE_OP_NAMES]) {
    for (const dtype of DTYPES) {
      if (dtype === 'f32' || INT_BINARY_OPS.includes(op)) specs.push(binaryKernel({ op, dtype, layout: LAYOUTS[0] }));
    }
  }
  for (const layout of LAYOUTS) {
    if (layout !== LAYOUTS[0]) specs.push(binaryKernel({ op: 'add', dtype: 'f32', layout }));
    specs.push(reluGradKernel(layout));
    if (layout.kind === 'strided') specs.push(whereKernel({ condDtype: 'f32', dtype: 'f32', layout }));
  }
  for (const condDtype of DTYPES)
    for (const dtype of DTYPES) specs.push(whereKernel({ condDtype, dtype, layout: { kind: 'vec4', operands: ['full', 'scalar', 'full'] } }));
  for (const from of DTYPES) for (const to of DTYPES) specs.push(castKernel({ from, to }));
  for (const layout of ['row', 'col', 'col4'] as ReduceLayout[]) {
    for (const op of REDUCE_OP_NAMES) specs.push(reduceKernel({ op, layout }));
    specs.push(reduceKernel({ op: 'argmax', layout, indexInput: true }), softmaxKernel({ log: false, layout }), softmaxKernel({ log: true, layout }));
  }
  specs.push(reduceKernel({ op: 'sum', layout: 'row', product: true }));
  for (const op of RANDOM_OP_NAMES) specs.push(randomKernel({ op }));
  specs.push(permutationKeysKernel(), bitonicStepKernel(), permutationIndicesKernel());
  for (let rank = 1; rank <= MOVEMENT_MAX_RANK; rank++) {
    specs.push(stridedCopyKernel({ rank, padded: false }), stridedCopyKernel({ rank, padded: true }), gatherKernel({ rank }));
    for (let axis = 0; axis < rank; axis++) specs.push(scatterAddKernel({ dtype: rank % 2 ? 'f32' : 'i32', rank, axis }));
  }
  specs.push(blockCopyKernel(), indexSelectKernel(), oneHotKernel(), indexBoundsKernel());
  specs.push(maxPool2dKernel(), maxPool2dBackwardKernel(), maxPool2dBackwardTileKernel(), avgPool2dKernel(), avgPool2dBackwardKernel());
  specs.push(affineGridKernel(), gridSampleKernel(), gridSampleInputGradScatterKernel(), fixedPointToF32Kernel(), gridSampleGridGradKernel());
  specs.push(convPackFilterKernel(), convSumSplitsKernel());
  for (const mode of ['forward', 'inputGrad'] as const) specs.push(conv2dDirectKernel({ mode, channelBlock: 8, pixelBlock: 4, unitStrideW: true }));
  for (const flip of [false, true]) specs.push(conv2dRowKernel({ channelBlock: 4, pixelBlock: 8, kW: 3, sW: 1, dW: 1, flip }));
  specs.push(conv2dFilterGradKernel({ channelBlock: 4, tapBlock: 4 }), conv2dFilterGradWindowKernel({ channelBlock: 4, kH: 3, kW: 3 }));
  specs.push(matmulKernel({ kind: 'simple' }), matmulPackKernel({ transposed: false }), matmulPackKernel({ transposed: true }));
  for (const vecOut of [false, true])
    for (const transB of [false, true]) specs.push(matmulKernel({ kind: 'register', rows: 4, cols: 8, wgX: 8, wgY: 4, vecOut, transB }));
  specs.push(matmulKernel({ kind: 'workgroup', tileM: 64, tileN: 64, tileK: 8, threadRows: 4, threadCols: 4 }));
  specs.push(sgdKernel(false), sgdKernel(true), adamKernel()); // the in-place optimisers' updates (models/optim)
  return specs;
}

/** The (binding index → kind) pairs declared in a kernel's WGSL. */
function declaredBindings(code: string): [number, string][] {
  return [...code.matchAll(/@group\(0\) @binding\((\d+)\) var<(storage, read|storage, read_write|uniform)>/g)].map((m) => [
    Number(m[1]),
    m[2] === 'storage, read' ? 'read' : m[2] === 'uniform' ? 'uniform' : 'write',
  ]);
}

const ir = (over: Partial<KernelIR> = {}): KernelIR => ({
  name: 'test',
  inputs: [{ name: 'x', dtype: 'f32' }],
  outputs: [{ name: 'out', dtype: 'f32' }],
  uniforms: [['n', 'u32']],
  workgroupSize: 64,
  body: 'if (gi >= u.n) { return; }\n  out[gi] = x[gi];',
  ...over,
});

describe('renderKernel', () => {
  it('declares exactly the bindings spec.bindings lists, numbered 0..n-1 (every migrated kernel)', () => {
    for (const spec of renderedSpecs()) {
      expect(declaredBindings(spec.code), spec.key).toEqual(spec.bindings.map((kind, i) => [i, kind]));
      expect(spec.code.match(/^struct U /gm)?.length ?? 0, spec.key).toBe(spec.bindings.includes('uniform') ? 1 : 0);
    }
  });

  it('binds inputs, then outputs, then the uniform block', () => {
    const spec = renderKernel(
      ir({
        inputs: [
          { name: 'a', dtype: 'f32' },
          { name: 'b', dtype: 'i32', vec: 4 },
        ],
        body: 'out[gi] = a[gi] + f32(b[0].x);',
      }),
    );
    expect(spec.bindings).toEqual(['read', 'read', 'write', 'uniform']);
    expect(spec.code).toContain('@group(0) @binding(1) var<storage, read> b: array<vec4<i32>>;');
    expect(spec.code).toContain('@group(0) @binding(3) var<uniform> u: U;');
    expect(renderKernel(ir({ uniforms: [], body: 'out[gi] = x[gi];' })).bindings).toEqual(['read', 'write']);
    const flags = renderKernel(
      ir({
        outputs: [
          { name: 'out', dtype: 'f32' },
          { name: 'flags', dtype: 'u32', atomic: true, length: 8 },
        ],
      }),
    );
    expect(flags.code).toContain('@group(0) @binding(2) var<storage, read_write> flags: array<atomic<u32>, 8>;');
    expect(flags.bindings).toEqual(['read', 'write', 'write', 'uniform']);
  });

  it('binds an input named twice once, read_write when either use writes it', () => {
    const spec = renderKernel(
      ir({
        inputs: [
          { name: 'x', dtype: 'f32' },
          { name: 'y', dtype: 'f32' },
          { name: 'y', dtype: 'f32', access: 'read_write' },
        ],
        outputs: [],
        body: 'y[gi] = x[gi] + y[gi];',
      }),
    );
    expect(spec.bindings).toEqual(['read', 'write', 'uniform']);
    expect(spec.code.match(/ y: array/g)).toHaveLength(1);
    expect(spec.code).toContain('var<storage, read_write> y: array<f32>;');
    expect(axpyKernel().bindings).toEqual(['read', 'write', 'uniform']);
  });

  it('refuses an input given twice with different element types, an output that shadows an input, an unknown helper', () => {
    expect(() =>
      renderKernel(
        ir({
          inputs: [
            { name: 'x', dtype: 'f32' },
            { name: 'x', dtype: 'i32' },
          ],
        }),
      ),
    ).toThrow(/x given as both array<f32> and array<i32>/);
    expect(() => renderKernel(ir({ outputs: [{ name: 'x', dtype: 'f32' }] }))).toThrow(/output x is also an input/);
    expect(() => renderKernel(ir({ body: 'out[gi] = mg_nope(x[gi]);' }))).toThrow(/unknown WGSL helper mg_nope/);
  });

  it('emits only the helpers the kernel uses, closed over their dependencies', () => {
    const defined = (code: string) => [...code.matchAll(/^fn (mg_\w+)/gm)].map((m) => m[1]).sort();
    expect(defined(renderKernel(ir({ body: 'out[gi] = mg_tanh(x[gi]);' })).code)).toEqual(['mg_expm1', 'mg_tanh']);
    expect(defined(renderKernel(ir({ body: 'out[gi] = mg_log1p(x[gi]);' })).code)).toEqual(['mg_inf', 'mg_log', 'mg_log1p', 'mg_nan']);
    expect(defined(renderKernel(ir({ functions: 'fn op(v: f32) -> f32 { return mg_relu(v); }', body: 'out[gi] = op(x[gi]);' })).code)).toEqual([
      'mg_isnan',
      'mg_relu',
    ]);
    expect(defined(renderKernel(ir()).code)).toEqual([]);
    expect(helpersUsed('mg_pow(a, b)')).toEqual(['mg_isnan', 'mg_nan', 'mg_inf', 'mg_pow']);
    // Every helper's own dependencies are in the table.
    for (const src of Object.values(WGSL_HELPERS)) expect(() => helpersUsed(src)).not.toThrow();
    // And in every migrated kernel, each helper defined is called and each called helper is defined.
    for (const spec of renderedSpecs()) {
      const defs = defined(spec.code);
      const calls = [...new Set([...spec.code.matchAll(/\b(mg_\w+)\(/g)].map((m) => m[1]))].sort();
      expect(defs, spec.key).toEqual(calls);
      for (const d of defs) expect(spec.code.split(`${d}(`).length - 1, `${spec.key} ${d}`).toBeGreaterThan(1);
    }
  });

  it('declares the builtins the body needs', () => {
    const main = (spec: KernelSpec) => spec.code.slice(spec.code.indexOf('fn main('), spec.code.indexOf(') {', spec.code.indexOf('fn main(')));
    expect(main(renderKernel(ir()))).toMatch(/workgroup_id\) wid.*local_invocation_id\) lid.*num_workgroups\) nwg/);
    expect(main(renderKernel(ir()))).not.toContain('global_invocation_id');
    const g = main(renderKernel(ir({ body: 'out[gid.x] = x[gid.x];' })));
    expect(g).toContain('@builtin(global_invocation_id) gid: vec3<u32>');
    expect(g).not.toContain('workgroup_id');
    expect(renderKernel(ir({ workgroupSize: [8, 8, 1], body: 'out[gid.x] = x[gid.y];' })).code).toContain('@workgroup_size(8, 8, 1)');
    expect(main(renderKernel(ir({ body: 'out[li] = x[wid.x];' })))).toBe(
      'fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32',
    );
  });

  it('gives the same key to the same kernel and a different key when anything in the WGSL or layout differs', () => {
    expect(renderKernel(ir()).key).toBe(renderKernel(ir()).key);
    const variants: KernelIR[] = [
      ir(),
      ir({ workgroupSize: 128 }),
      ir({ inputs: [{ name: 'x', dtype: 'i32' }] }),
      ir({ inputs: [{ name: 'x', dtype: 'f32', access: 'read_write' }] }),
      ir({
        uniforms: [
          ['n', 'u32'],
          ['pad', 'u32'],
        ],
      }),
      ir({ body: 'if (gi >= u.n) { return; }\n  out[gi] = -x[gi];' }),
      ir({ functions: 'fn unused() {}' }),
    ];
    const keys = variants.map((v) => renderKernel(v).key);
    expect(new Set(keys).size).toBe(variants.length);
    for (const k of keys) expect(k.startsWith('test:')).toBe(true);
    // Across every migrated kernel: one key per distinct (code, layout), and the readable name stays the prefix.
    const byKey = new Map<string, string>();
    for (const spec of renderedSpecs()) {
      const sig = `${spec.code}|${spec.bindings.join(',')}`;
      expect(byKey.get(spec.key) ?? sig, spec.key).toBe(sig);
      byKey.set(spec.key, sig);
    }
    expect(new Set(byKey.values()).size).toBe(byKey.size);
    // Every parameter set listed is a different kernel: a memo name that left out a parameter would collide here.
    expect(byKey.size).toBe(renderedSpecs().length);
    expect(binaryKernel({ op: 'add', dtype: 'f32', layout: { kind: 'strided', rank: 3 } }).key).toMatch(/^binary:add:f32:r3:/);
  });

  it('every migrated kernel compiles', async () => {
    for (const spec of renderedSpecs()) await device.compile(spec);
  });

  it('shares one pipeline across shapes: shapes live in the uniforms, not the kernel', async () => {
    const run = async (a: number[], b: number[]) => {
      const x = ops.ones(a, 'f32', device);
      const y = ops.ones(b, 'f32', device);
      const z = ops.add(x, y);
      const data = await z.toArray();
      [x, y, z].forEach((t) => t.dispose());
      return data;
    };
    for (const [small, big] of [
      [
        [[3], [3]],
        [[1000], [1000]],
      ], // vec4, full + full
      [
        [
          [2, 1],
          [1, 3],
        ],
        [
          [5, 1],
          [1, 7],
        ],
      ], // strided rank 2
      [
        [[4], [1]],
        [[99], [1]],
      ], // vec4, full + scalar
    ] as const) {
      await run([...small[0]], [...small[1]]);
      const before = device.pipelineCount;
      const out = await run([...big[0]], [...big[1]]);
      expect(device.pipelineCount).toBe(before);
      expect(out.every((v) => v === 2)).toBe(true);
    }
  });

  it('shares reduce and strided-copy pipelines across shapes too', async () => {
    const run = async (shape: number[]) => {
      const x = ops.ones(shape, 'f32', device);
      const s = ops.sum(x, 1);
      const t = ops.transpose(x, 0, 1);
      const [sd, td] = [await s.toArray(), await t.toArray()];
      [x, s, t].forEach((v) => v.dispose());
      return [...sd, ...td];
    };
    await run([3, 5]);
    const before = device.pipelineCount;
    const out = await run([7, 9]);
    expect(device.pipelineCount).toBe(before);
    expect(out.slice(0, 7).every((v) => v === 9)).toBe(true);
  });
});
