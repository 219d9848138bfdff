import { describe, it, expect } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { groupedBars, lineChart, scatter, sideBySide, type Row } from '@metagrad/experiments';
import { figureFontFiles, FigureRenderError, renderFigure, renderSvg, svgToPixels, svgToPng } from '../../apps/cli/src/render-figure';
import { checkWellFormedXml } from './xml-check';

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function bandRows(): Row[] {
  const rows: Row[] = [];
  for (const method of ['exact', 'EvoGrad']) {
    for (let i = 0; i < 8; i++) {
      const mean = Math.sin(i / 2) + (method === 'exact' ? 0 : 0.1);
      rows.push({ lambda: 10 ** (i / 2 - 2), method, mean, lo: mean - 0.2, hi: mean + 0.2 });
    }
  }
  return rows;
}

function barRows(): Row[] {
  return ['unrolled', 'T1–T2', 'EvoGrad'].flatMap((method, k) => [64, 256].map((width) => ({ width: String(width), method, mib: width / (k + 1) })));
}

/** The SVG <text> contents, entities decoded as a reader would see them. */
function svgTexts(svg: string): string[] {
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1].replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>'));
}

describe('figure specs render headless to SVG', () => {
  it('line chart with a band, log axis and reference rule', async () => {
    const svg = await renderSvg(
      lineChart({
        title: 'Hypergradient vs λ & friends',
        x: 'lambda',
        y: 'mean',
        series: 'method',
        data: bandRows(),
        logX: true,
        band: { lower: 'lo', upper: 'hi' },
        rule: { y: 0, label: 'zero' },
      }),
    );
    expect(checkWellFormedXml(svg)).toBe('svg');
    expect(svg.length).toBeGreaterThan(5000);
    expect(svgTexts(svg)).toContain('Hypergradient vs λ & friends');
    expect(svgTexts(svg)).toEqual(expect.arrayContaining(['exact', 'EvoGrad', 'zero']));
  });

  it('scatter with the identity line, and grouped bars on a log axis', async () => {
    const pts = Array.from({ length: 20 }, (_, i) => ({
      exact: Math.cos(i),
      estimate: Math.cos(i) * 0.9,
      method: i % 2 ? 'CG' : 'Neumann',
    }));
    const scatterSvg = await renderSvg(
      scatter({
        title: 'Estimate vs exact',
        x: 'exact',
        y: 'estimate',
        series: 'method',
        data: pts,
        identityLine: true,
      }),
    );
    expect(checkWellFormedXml(scatterSvg)).toBe('svg');
    expect(svgTexts(scatterSvg)).toContain('Estimate vs exact');
    const barsSvg = await renderSvg(
      groupedBars({
        title: 'Peak memory per method',
        category: 'width',
        group: 'method',
        value: { field: 'mib', title: 'MiB' },
        data: barRows(),
        logY: true,
      }),
    );
    expect(checkWellFormedXml(barsSvg)).toBe('svg');
    expect(svgTexts(barsSvg)).toEqual(expect.arrayContaining(['Peak memory per method', 'MiB', 'T1–T2']));
    expect(barsSvg).toContain('mark-rect');
  });

  it('drops rows a log axis cannot show instead of breaking the scale', async () => {
    const rows = [...bandRows(), { lambda: 0, method: 'exact', mean: 1, lo: 0, hi: 2 }, { lambda: 1, method: 'exact', mean: Number.NaN, lo: 0, hi: 1 }];
    const spec = lineChart({ title: 'clean', x: 'lambda', y: 'mean', data: rows, logX: true });
    expect((spec.data as { values: Row[] }).values).toHaveLength(bandRows().length);
    await expect(renderSvg(spec)).resolves.toContain('clean');
  });

  it('fails loudly on a spec Vega can only draw empty', async () => {
    const stacked = {
      title: 'bad',
      data: { values: barRows() },
      mark: 'bar' as const,
      encoding: {
        x: { field: 'width', type: 'nominal' as const },
        y: { field: 'mib', type: 'quantitative' as const, scale: { type: 'log' as const } },
        color: { field: 'method' },
      },
    };
    await expect(renderSvg(stacked)).rejects.toThrow(FigureRenderError);
  });
});

describe('SVG to PNG', () => {
  it('loads the npm-shipped font, so text becomes pixels without system fonts', () => {
    for (const file of figureFontFiles()) expect(statSync(file).size).toBeGreaterThan(100_000);
    const draw = (text: string): number => {
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40"><rect width="120" height="40" fill="white"/><text x="5" y="28" font-family="DejaVu Sans" font-size="20">${text}</text></svg>`;
      const { pixels } = svgToPixels(svg);
      let dark = 0;
      for (let i = 0; i < pixels.length; i += 4) if (pixels[i] < 128) dark++;
      return dark;
    };
    expect(draw('')).toBe(0);
    expect(draw('Hello λ')).toBeGreaterThan(50);
  });

  it('renderFigure writes an SVG and a PNG of non-trivial size', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'metagrad-plot-'));
    try {
      const spec = sideBySide('Cost per meta-step', [
        groupedBars({ title: 'memory', category: 'width', group: 'method', value: 'mib', data: barRows() }),
        groupedBars({ title: 'time', category: 'width', group: 'method', value: 'mib', data: barRows(), logY: true }),
      ]);
      const paths = await renderFigure(spec, join(dir, 'sub', 'cost'));
      expect(paths).toEqual({ svg: join(dir, 'sub', 'cost.svg'), png: join(dir, 'sub', 'cost.png') });
      const svg = readFileSync(paths.svg, 'utf8');
      expect(checkWellFormedXml(svg)).toBe('svg');
      expect(svgTexts(svg)).toContain('Cost per meta-step');
      const png = readFileSync(paths.png);
      expect(png.subarray(0, 8).equals(PNG_SIGNATURE)).toBe(true);
      expect(png.length).toBeGreaterThan(2048);
      // Rendered at 2×: the IHDR width is twice the SVG's.
      const svgWidth = Number(/<svg[^>]*\swidth="(\d+)"/.exec(svg)?.[1]);
      expect(png.readUInt32BE(16)).toBe(2 * svgWidth);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('svgToPng scales', () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="red"/></svg>';
    expect(svgToPng(svg, 3).readUInt32BE(16)).toBe(30);
  });
});
