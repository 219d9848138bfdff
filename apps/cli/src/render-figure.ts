/** @file Renders a Vega-Lite spec headless: vega-lite → Vega → SVG (no DOM, no canvas), then SVG → PNG with resvg. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile } from 'vega-lite';
import { FIGURE_FONT, type VegaLiteSpec } from '@metagrad/experiments';

export class FigureRenderError extends Error {
  override name = 'FigureRenderError';
}

/**
 * The TrueType files resvg draws text with. They come from the `dejavu-fonts-ttf` npm package rather than the
 * system, so a fresh machine without fontconfig or /usr/share/fonts still gets labelled plots, and every machine
 * gets the same pixels.
 */
export function figureFontFiles(): string[] {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf');
  return ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf', 'DejaVuSans-Oblique.ttf'].map((f) => join(dir, f));
}

/** Compiles Vega-Lite and draws the scene to an SVG string; `renderer: 'none'` keeps Vega from wanting a DOM. */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  let compiled;
  try {
    compiled = compile(spec).spec;
  } catch (e) {
    throw new FigureRenderError(`vega-lite could not compile the figure '${specTitle(spec)}': ${(e as Error).message}`);
  }
  // Vega reports spec problems as warnings and draws an empty plot; collect them so a broken figure fails loudly.
  const warnings: string[] = [];
  const logger = vega.logger(vega.Warn);
  logger.warn = (...args: readonly unknown[]) => {
    warnings.push(args.map(String).join(' '));
    return logger;
  };
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logger });
  try {
    const svg = await view.toSVG();
    const fatal = warnings.filter((w) => /Unrecognized|Infinite extent|undefined|domain includes zero/i.test(w));
    if (fatal.length) throw new FigureRenderError(`figure '${specTitle(spec)}': ${fatal.join('; ')}`);
    return svg;
  } finally {
    view.finalize();
  }
}

function rasterize(svg: string, scale: number) {
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: {
      loadSystemFonts: false,
      fontFiles: figureFontFiles(),
      defaultFontFamily: FIGURE_FONT,
      sansSerifFamily: FIGURE_FONT,
    },
  });
  return resvg.render();
}

/** Rasterises an SVG at `scale`× (2 by default, so PNGs stay sharp on high-DPI screens and in slides). */
export function svgToPng(svg: string, scale = 2): Buffer {
  return rasterize(svg, scale).asPng();
}

/** The RGBA pixels (row-major, 4 bytes each, on white) of an SVG drawn exactly as `svgToPng` draws it. */
export function svgToPixels(svg: string, scale = 1): { width: number; height: number; pixels: Buffer } {
  const image = rasterize(svg, scale);
  return { width: image.width, height: image.height, pixels: image.pixels };
}

/**
 * Writes `<outPathWithoutExt>.svg` and `.png` (creating the folder) and returns both paths.
 * The SVG is the scalable original for papers; the PNG is what report.md embeds, since Markdown viewers render it everywhere.
 */
export async function renderFigure(spec: VegaLiteSpec, outPathWithoutExt: string): Promise<{ svg: string; png: string }> {
  const svg = await renderSvg(spec);
  const png = svgToPng(svg);
  mkdirSync(dirname(outPathWithoutExt), { recursive: true });
  const paths = { svg: `${outPathWithoutExt}.svg`, png: `${outPathWithoutExt}.png` };
  writeFileSync(paths.svg, svg);
  writeFileSync(paths.png, png);
  return paths;
}

function specTitle(spec: VegaLiteSpec): string {
  const t = spec.title;
  if (typeof t === 'string') return t;
  if (t && typeof t === 'object' && 'text' in t) return String(t.text);
  return '(untitled)';
}
