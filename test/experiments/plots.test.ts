/**
 * @file The report's figure specs (packages/experiments/src/plots.ts): whole-number ticks on axes that count, full
 * legend labels, log axes no wider than the decades around the data, one colour per method with a dash per variant.
 * Each property is checked on the spec and on the SVG that Vega draws from it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DASHES, groupedBars, lineChart, logDomain, scatter, sideBySide, type Row, type VegaLiteSpec } from '@metagrad/experiments';
import { renderSvg } from '../../apps/cli/src/render-figure';

type Enc = Record<string, { field?: string; scale?: Record<string, unknown>; axis?: Record<string, unknown> | null; legend?: unknown } | undefined>;

/** The encodings of a spec's layers (the line layer last but the rule's). */
function layers(spec: VegaLiteSpec): { encoding: Enc }[] {
  return (spec as unknown as { layer: { encoding: Enc }[] }).layer.filter((l) => l.encoding);
}

function lineEncoding(spec: VegaLiteSpec): Enc {
  const all = layers(spec);
  return all[all.length - 1].encoding;
}

/** The SVG's text contents. */
function texts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1].replace(/&amp;/g, '&'));
}

/** Tick labels of the axis whose title is `title` (Vega draws an axis as a group with role-axis, labels inside). */
function axisLabels(svg: string, title: string): string[] {
  const groups = svg.split('role-axis"').slice(1);
  const axis = groups.find((g) => texts(g.slice(0, g.indexOf('role-axis-title') + 400)).includes(title));
  if (!axis) throw new Error(`no axis titled ${title}`);
  const labels = axis.slice(axis.indexOf('role-axis-label'), axis.indexOf('role-axis-title'));
  return texts(labels);
}

const steps = (n: number, methods: string[]): Row[] =>
  methods.flatMap((method, k) => Array.from({ length: n }, (_, i) => ({ step: i + 1, loss: (k + 1) / (i + 1), method })));

describe('axes that count get whole-number ticks', () => {
  it('an x axis of integers (steps, inner optimisations): tickMinStep 1 and an integer format, no 1.5 between', async () => {
    const spec = lineChart({
      title: 't',
      data: steps(6, ['FO', 'HD']),
      x: { field: 'step', title: 'inner optimisation' },
      y: 'loss',
      series: 'method',
    });
    expect(lineEncoding(spec).x?.axis).toEqual({ tickMinStep: 1, format: ',d' });
    const labels = axisLabels(await renderSvg(spec), 'inner optimisation');
    expect(labels.length).toBeGreaterThanOrEqual(3);
    for (const label of labels) expect(label).toMatch(/^\d+$/);
    // Before: Vega chose 1.0, 1.5, 2.0, … 6.0 for six inner optimisations.
    expect(labels).not.toContain('1.5');
  });

  it('a count on a log axis (inner steps 10–100) and a large one (elements) format as integers', async () => {
    const data = [10, 20, 50, 100].map((s) => ({ s, ms: s * 3, method: 'MAML' }));
    const spec = lineChart({
      title: 't',
      data,
      x: { field: 's', title: 'inner steps' },
      y: 'ms',
      series: 'method',
      logX: true,
      logY: true,
    });
    expect(lineEncoding(spec).x?.axis).toMatchObject({ tickMinStep: 1 });
    for (const label of axisLabels(await renderSvg(spec), 'inner steps')) expect(label).toMatch(/^\d+$/);
    const big = [4096, 16384, 65536, 262144].map((elements) => ({ elements, ms: elements / 1000 }));
    const bigLabels = axisLabels(await renderSvg(lineChart({ title: 't', data: big, x: 'elements', y: 'ms', logX: true, logY: true })), 'elements');
    for (const label of bigLabels) expect(label).toMatch(/^\d{1,3}(,\d{3})*$/);
  });

  it('a measured x (λ, a loss) keeps Vega’s ticks; a y can be marked as counting', () => {
    const data = [0.1, 0.5, 1.2, 2].map((lambda) => ({ lambda, value: lambda / 3 }));
    expect(lineEncoding(lineChart({ title: 't', data, x: 'lambda', y: 'value' })).x?.axis).toBeUndefined();
    expect(lineEncoding(lineChart({ title: 't', data, x: { field: 'lambda', integer: false }, y: { field: 'value', integer: true } })).y?.axis).toEqual({
      tickMinStep: 1,
      format: ',d',
    });
    const bars = groupedBars({
      title: 't',
      data: [
        { m: 'a', n: 3 },
        { m: 'b', n: 5 },
      ],
      category: 'm',
      group: 'm',
      value: { field: 'n', integer: true },
    });
    expect((bars as unknown as { layer: { encoding: Enc }[] }).layer[0].encoding.y?.axis).toMatchObject({
      tickMinStep: 1,
    });
  });
});

describe('legends show whole labels', () => {
  it('labelLimit 0 in the shared config, and the longest label drawn without an ellipsis', async () => {
    const long = 'backprop-euler, T=1 (100 tracked states)';
    const spec = lineChart({
      title: 't',
      data: steps(3, ['adjoint-heun', long]),
      x: 'step',
      y: 'loss',
      series: 'method',
    });
    expect(spec.config?.legend).toMatchObject({ labelLimit: 0 });
    const svg = await renderSvg(spec);
    expect(texts(svg)).toContain(long);
    expect(svg).not.toContain('…');
    const joined = await renderSvg(sideBySide('two', [spec, spec]));
    expect(texts(joined)).toContain(long);
  });
});

describe('log axes stay within the decades around the data', () => {
  it.each([
    [[0.48, 0.55, 0.62], 0.1, 1],
    [[4096, 16384, 65536, 262144], 1000, 1e6],
    [[10, 20, 50, 100], 10, 100],
    [[2.1e-5, 3.2e-3, 0.17], 1e-5, 1],
    [[0.002, 0.002], 0.001, 0.01],
  ])('data %j: domain covers it, within [decade below, decade above], no wider than needed', (values, decadeLo, decadeHi) => {
    const [lo, hi] = logDomain(values)!;
    const min = Math.min(...values);
    const max = Math.max(...values);
    expect(lo).toBeLessThanOrEqual(min);
    expect(hi).toBeGreaterThanOrEqual(max);
    expect(lo).toBeGreaterThanOrEqual(decadeLo * (1 - 1e-12));
    expect(hi).toBeLessThanOrEqual(decadeHi * (1 + 1e-12));
    // The padding is a few per cent of the span in log units (or ×1.5 around a single value).
    const span = Math.log10(max / min) || Math.log10(2.25);
    expect(Math.log10(hi / lo)).toBeLessThanOrEqual(span * 1.1 + 1e-9);
  });

  it('the spec carries the tight domain with nice off, for lines, bands, rules, scatter and bars', async () => {
    const data = [0.48, 0.52, 0.62].map((v, i) => ({ step: i, v, lo: v * 0.95, hi: v * 1.05, method: 'A-MAML' }));
    const spec = lineChart({
      title: 't',
      data,
      x: 'step',
      y: { field: 'v', title: 'test nRMSE' },
      band: { lower: 'lo', upper: 'hi' },
      series: 'method',
      logY: true,
      rule: { y: 0.5 },
    });
    const y = lineEncoding(spec).y?.scale as { type: string; domain: [number, number]; nice: boolean };
    expect(y).toMatchObject({ type: 'log', nice: false });
    expect(y.domain[0]).toBeGreaterThan(0.4);
    expect(y.domain[0]).toBeLessThanOrEqual(0.48 * 0.95);
    expect(y.domain[1]).toBeGreaterThanOrEqual(0.62 * 1.05);
    expect(y.domain[1]).toBeLessThan(0.75);
    const labels = axisLabels(await renderSvg(spec), 'test nRMSE');
    // Before: 0.1 … 1 with the data in the top tenth of the plot.
    expect(labels).not.toContain('0.1');
    expect(labels.length).toBeGreaterThanOrEqual(2);
    const s = scatter({
      title: 't',
      data: [
        { a: 3, b: 4 },
        { a: 30, b: 20 },
      ],
      x: 'a',
      y: 'b',
      logX: true,
      logY: true,
      identityLine: true,
    });
    const sx = (s as unknown as { layer: { encoding: Enc }[] }).layer[1].encoding.x?.scale as { domain: number[] };
    expect(sx.domain[0]).toBeGreaterThanOrEqual(1);
    expect(sx.domain[1]).toBeLessThanOrEqual(100);
    const bars = groupedBars({
      title: 't',
      data: [
        { m: 'a', v: 200 },
        { m: 'b', v: 900 },
      ],
      category: 'm',
      group: 'm',
      value: 'v',
      logY: true,
    });
    const by = (bars as unknown as { layer: { encoding: Enc }[] }).layer[0].encoding.y?.scale as { domain: number[] };
    expect(by.domain[0]).toBeGreaterThanOrEqual(100);
    expect(by.domain[1]).toBeLessThanOrEqual(1000);
  });
});

describe('one colour per method, a dash per variant', () => {
  /** Distinct stroke colours and dash patterns of the drawn lines. */
  function lineStyles(svg: string): { colours: Set<string>; dashes: Set<string> } {
    const lines = [...svg.matchAll(/<path[^>]*aria-roledescription="line mark"[^>]*>/g)].map((m) => m[0]);
    return {
      colours: new Set(lines.map((p) => /stroke="([^"]+)"/.exec(p)?.[1] ?? '')),
      dashes: new Set(lines.map((p) => /stroke-dasharray="([^"]+)"/.exec(p)?.[1] ?? 'solid')),
    };
  }

  it('five methods in two variants: five colours, two dashes, one legend entry per method and per variant', async () => {
    const methods = ['adjoint-heun', 'adjoint-euler', 'backprop-euler', 'EvoGrad', 'T1-T2'];
    const data = methods.flatMap((method) => ['T=1', 'T=2'].flatMap((horizon) => steps(4, [method]).map((r) => ({ ...r, horizon }))));
    const spec = lineChart({
      title: 't',
      data,
      x: 'step',
      y: 'loss',
      series: { field: 'method', title: 'method' },
      variant: { field: 'horizon', title: 'horizon' },
    });
    const enc = lineEncoding(spec);
    expect(enc.color).toMatchObject({ field: 'method' });
    expect(enc.strokeDash).toMatchObject({
      field: 'horizon',
      scale: { domain: ['T=1', 'T=2'], range: [DASHES[0], DASHES[1]] },
    });
    const svg = await renderSvg(spec);
    const { colours, dashes } = lineStyles(svg);
    expect(colours.size).toBe(5);
    expect(dashes.size).toBe(2);
    const labels = texts(svg);
    for (const label of [...methods, 'T=1', 'T=2', 'horizon']) expect(labels).toContain(label);
    // The dash legend's swatches are drawn (Vega-Lite leaves them without a stroke unless told).
    const swatches = [...svg.matchAll(/role-legend-symbol[^>]*><path[^>]*>/g)].map((m) => m[0]).filter((p) => p.includes('stroke-dasharray'));
    expect(swatches.length).toBeGreaterThanOrEqual(2);
    for (const swatch of swatches.slice(-2)) expect(swatch).toMatch(/stroke="#555"/);
    // No combined "method, T=1" entries: ten of those took ten colours.
    expect(labels.filter((t) => /, T=/.test(t))).toEqual([]);
  });

  it('a method without variants is solid and not in the dash legend; detail splits lines without a legend', async () => {
    const rows: Row[] = [
      ...steps(3, ['EvoGrad']).map((r) => ({ ...r, copies: 'K=2' })),
      ...steps(3, ['EvoGrad']).map((r) => ({ ...r, copies: 'K=4', loss: Number(r.loss) * 2 })),
      ...steps(3, ['plain']),
    ];
    const spec = lineChart({
      title: 't',
      data: rows,
      x: 'step',
      y: 'loss',
      series: 'method',
      variant: { field: 'copies', title: 'copies' },
    });
    const dash = lineEncoding(spec).strokeDash as {
      scale: { domain: string[]; range: number[][] };
      legend: { values: string[] };
    };
    expect(dash.scale.domain).toEqual(['', 'K=2', 'K=4']);
    expect(dash.scale.range).toEqual([DASHES[0], DASHES[0], DASHES[1]]);
    expect(dash.legend.values).toEqual(['K=2', 'K=4']);
    const svg = await renderSvg(spec);
    expect(lineStyles(svg).colours.size).toBe(2);

    const seeds = [0, 1, 2].flatMap((seed) => steps(3, ['evograd', 't1-t2']).map((r) => ({ ...r, seed, loss: Number(r.loss) + seed })));
    const bySeed = lineChart({ title: 't', data: seeds, x: 'step', y: 'loss', series: 'method', detail: 'seed' });
    expect(lineEncoding(bySeed).detail).toMatchObject({ field: 'seed' });
    const seedSvg = await renderSvg(bySeed);
    expect(lineStyles(seedSvg).colours.size).toBe(2);
    expect(texts(seedSvg)).not.toContain('seed');
  });

  it('bars coloured by their own category need no offset slots and no legend; seeds side by side keep one colour per method', async () => {
    const methods = ['FO', '1-step', 'DrMAD', 'Neumann IFT (3, 3)', 'HD γ=0.9'];
    const one = groupedBars({
      title: 't',
      data: methods.map((method, i) => ({ method, mse: i + 1 })),
      category: 'method',
      group: 'method',
      value: 'mse',
    });
    const enc = (one as unknown as { layer: { encoding: Enc }[] }).layer[0].encoding;
    expect(enc.xOffset).toBeUndefined();
    expect(enc.color).toMatchObject({ field: 'method', legend: null });
    const svg = await renderSvg(one);
    expect(Number(/<svg[^>]*\swidth="(\d+)"/.exec(svg)?.[1])).toBeLessThan(900); // was 8 × 8 × 24 px of empty slots
    for (const m of methods) expect(texts(svg)).toContain(m);
    const seeds = groupedBars({
      title: 't',
      data: ['baseline', 't1-t2'].flatMap((method) => [0, 1].map((seed) => ({ method, seed: `seed ${seed}`, acc: 60 + seed }))),
      category: 'method',
      group: 'seed',
      color: 'method',
      value: 'acc',
    });
    const se = (seeds as unknown as { layer: { encoding: Enc }[] }).layer[0].encoding;
    expect(se.xOffset).toMatchObject({ field: 'seed' });
    expect(se.color).toMatchObject({ field: 'method', legend: null });
  });
});

describe('the experiments use these encodings', () => {
  it('no figure builds "method, seed N" or "method, T=…" series labels (each such pair took a colour of its own)', () => {
    const dir = join(process.cwd(), 'packages', 'experiments', 'src');
    const offenders = readdirSync(dir)
      .filter((f) => f.endsWith('.ts'))
      .flatMap((f) =>
        readFileSync(join(dir, f), 'utf8')
          .split('\n')
          .map((line, i) => ({ where: `${f}:${i + 1}`, line }))
          .filter(({ line }) => /series: .*(seed \$\{|T=\$\{)/.test(line)),
      )
      .map(({ where }) => where);
    expect(offenders).toEqual([]);
  });
});
