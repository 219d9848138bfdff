/** Checks the float64 reference against PyTorch outputs recorded by test/fixtures/gen_reference.py. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  type RefTensor,
  affineGrid,
  avgPool2d,
  avgPool2dBackward,
  conv2d,
  conv2dFilterGrad,
  conv2dInputGrad,
  gather,
  gridSample,
  gridSampleGridGrad,
  gridSampleInputGrad,
  logSoftmax,
  logsumexp,
  matmul,
  maxPool2d,
  maxPool2dBackward,
  refTensor,
  scatterAdd,
  softmax,
} from '../../packages/tensor/src/reference/index';

interface Json {
  shape: number[];
  data: number[];
}
interface Case {
  op: string;
  opts: Record<string, any>;
  inputs: Record<string, Json>;
  outputs: Record<string, Json>;
}

const fixture = JSON.parse(readFileSync(new URL('../fixtures/reference-ops.json', import.meta.url), 'utf8')) as {
  cases: Case[];
};

/** |got − want| ≤ 1e-9·max(|want|, 1): relative for O(1)-and-up values, absolute near zero. */
function expectMatches(got: RefTensor, want: Json, label: string): void {
  expect(got.shape, label).toEqual(want.shape);
  let worst = 0;
  for (let i = 0; i < want.data.length; i++) {
    worst = Math.max(worst, Math.abs(got.data[i] - want.data[i]) / Math.max(Math.abs(want.data[i]), 1));
  }
  expect(worst, label).toBeLessThanOrEqual(1e-9);
}

const T = (j: Json): RefTensor => refTensor(j.data, j.shape);

function check(c: Case): void {
  const i = Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, T(v)]));
  const o = c.outputs;
  const op = c.op;
  switch (op) {
    case 'conv2d': {
      const opts = c.opts;
      expectMatches(conv2d(i.x, i.w, opts), o.y, 'y');
      expectMatches(conv2dInputGrad(i.gy, i.w, i.x.shape, opts), o.gx, 'gx');
      expectMatches(conv2dFilterGrad(i.x, i.gy, i.w.shape, opts), o.gw, 'gw');
      return;
    }
    case 'maxPool2d':
      expectMatches(maxPool2d(i.x, c.opts as any), o.y, 'y');
      expectMatches(maxPool2dBackward(i.gy, i.x, c.opts as any), o.gx, 'gx');
      return;
    case 'avgPool2d':
      expectMatches(avgPool2d(i.x, c.opts as any), o.y, 'y');
      expectMatches(avgPool2dBackward(i.gy, i.x.shape, c.opts as any), o.gx, 'gx');
      return;
    case 'affineGrid':
      expectMatches(affineGrid(i.theta, c.opts.size, c.opts.alignCorners), o.grid, 'grid');
      return;
    case 'gridSample': {
      const opts = { alignCorners: c.opts.alignCorners as boolean };
      expectMatches(gridSample(i.x, i.grid, opts), o.y, 'y');
      expectMatches(gridSampleInputGrad(i.gy, i.grid, i.x.shape, opts), o.gx, 'gx');
      expectMatches(gridSampleGridGrad(i.gy, i.x, i.grid, opts), o.ggrid, 'ggrid');
      return;
    }
    case 'logsumexp':
      expectMatches(logsumexp(i.x, c.opts.axes ?? undefined, c.opts.keepDims), o.y, 'y');
      return;
    case 'softmax':
      expectMatches(softmax(i.x, c.opts.axis), o.y, 'y');
      expectMatches(logSoftmax(i.x, c.opts.axis), o.logy, 'logy');
      return;
    case 'gather':
      expectMatches(gather(i.x, c.opts.axis, i.index), o.y, 'y');
      return;
    case 'scatterAdd':
      expectMatches(scatterAdd(i.x, c.opts.axis, i.index, i.src), o.y, 'y');
      return;
    case 'matmul':
      expectMatches(matmul(i.a, i.b, c.opts), o.y, 'y');
      return;
    default:
      throw new Error(`fixture op ${op} has no checker`);
  }
}

describe('reference ops match PyTorch float64 fixtures', () => {
  it('fixture file has cases for every family', () => {
    const ops = new Set(fixture.cases.map((c) => c.op));
    for (const op of ['conv2d', 'maxPool2d', 'avgPool2d', 'affineGrid', 'gridSample', 'logsumexp', 'gather', 'scatterAdd']) {
      expect(ops.has(op), op).toBe(true);
    }
  });
  it.each(fixture.cases.map((c, k) => [`${k}: ${c.op} ${JSON.stringify(c.opts)}`, c] as const))('%s', (_, c) => check(c));
});
