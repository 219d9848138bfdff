/** @file Typed builders for the report's figure kinds (lines with bands, scatter, grouped bars), returning Vega-Lite specs. */
import type { TopLevelSpec } from 'vega-lite';

/** A complete Vega-Lite spec; `renderFigure` compiles and draws it. */
export type VegaLiteSpec = TopLevelSpec;

/** One data row; fields are referenced by name from the builders' options. */
export type Row = Record<string, number | string | boolean | null>;

/** A field name, or a field name with the axis/legend title to show for it. */
export type FieldRef = string | { field: string; title?: string };

/** The font every figure names: the PNG renderer loads exactly this face, so text never depends on system fonts. */
export const FIGURE_FONT = 'DejaVu Sans';

interface Common {
  title: string;
  /** Optional second title line, e.g. the settings the figure was made with. */
  subtitle?: string;
  data: Row[];
  /** Plot area in pixels (legend and axes come on top). */
  width?: number;
  height?: number;
}

export interface LineChartOptions extends Common {
  x: FieldRef;
  y: FieldRef;
  /** Field whose values are drawn as separate coloured lines (method, estimator, adapter). */
  series?: FieldRef;
  logX?: boolean;
  logY?: boolean;
  /** Fields holding the lower and upper edge of a shaded band around each line (mean ± std, min–max). */
  band?: { lower: string; upper: string };
  /** Draw a dot on each data point; on by default because the report's curves have few points. */
  points?: boolean;
  /** Horizontal reference line, e.g. the exact hypergradient or the paper's value. */
  rule?: { y: number; label?: string };
}

export interface ScatterOptions extends Common {
  x: FieldRef;
  y: FieldRef;
  series?: FieldRef;
  logX?: boolean;
  logY?: boolean;
  /** Draw y = x, for estimate-vs-exact plots. */
  identityLine?: boolean;
}

export interface GroupedBarsOptions extends Common {
  /** Field along the x axis (e.g. model width, or the measured quantity). */
  category: FieldRef;
  /** Field whose values are the bars inside each category (e.g. the method). */
  group: FieldRef;
  value: FieldRef;
  logY?: boolean;
  /** Fields holding an error bar's lower and upper end. */
  errorBar?: { lower: string; upper: string };
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

function field(ref: FieldRef): { field: string; title: string } {
  return typeof ref === 'string' ? { field: ref, title: ref } : { field: ref.field, title: ref.title ?? ref.field };
}

/** Shared look: one font everywhere, white background (PNG viewers show transparency as black or checkers). */
function config(): NonNullable<TopLevelSpec['config']> {
  return {
    font: FIGURE_FONT,
    background: 'white',
    title: { fontSize: 14, anchor: 'start', subtitleFontSize: 11, subtitleColor: '#555' },
    axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#e6e6e6' },
    // Opaque swatches: a band layer would otherwise lend its translucency to the shared colour legend.
    legend: { labelFontSize: 11, titleFontSize: 12, symbolOpacity: 1 },
    view: { stroke: '#ccc' },
  };
}

function title(o: Common): TopLevelSpec['title'] {
  return o.subtitle ? { text: o.title, subtitle: o.subtitle } : o.title;
}

/**
 * Rows a log axis cannot show (≤ 0) and non-finite numbers are dropped here rather than in Vega, where they
 * would silently bend the scale domain or vanish with only a console warning.
 */
function cleanRows(rows: Row[], numeric: string[], positive: string[]): Row[] {
  return rows.filter((r) =>
    numeric.every((f) => {
      const v = r[f];
      if (typeof v !== 'number') return v !== null && v !== undefined;
      return Number.isFinite(v) && (!positive.includes(f) || v > 0);
    }),
  );
}

function scale(log: boolean | undefined, zero: boolean): { type: 'log' } | { zero: boolean } {
  return log ? { type: 'log' } : { zero };
}

/** Lines over x, one per series, optionally with a shaded band (mean ± std) and a horizontal reference. */
export function lineChart(o: LineChartOptions): VegaLiteSpec {
  const x = field(o.x);
  const y = field(o.y);
  const series = o.series === undefined ? undefined : field(o.series);
  const bandFields = o.band ? [o.band.lower, o.band.upper] : [];
  const values = cleanRows(o.data, [x.field, y.field, ...bandFields], [...(o.logX ? [x.field] : []), ...(o.logY ? [y.field, ...bandFields] : [])]);
  const xEnc = { field: x.field, type: 'quantitative' as const, title: x.title, scale: scale(o.logX, false) };
  const color = series ? { color: { field: series.field, type: 'nominal' as const, title: series.title } } : {};
  const layers: NonNullable<Extract<TopLevelSpec, { layer: unknown }>['layer']> = [];
  if (o.band) {
    layers.push({
      mark: { type: 'area', opacity: 0.2 },
      encoding: {
        x: xEnc,
        y: { field: o.band.lower, type: 'quantitative', title: y.title, scale: scale(o.logY, false) },
        y2: { field: o.band.upper },
        ...color,
      },
    });
  }
  layers.push({
    mark: { type: 'line', point: o.points ?? true, strokeWidth: 2 },
    encoding: { x: xEnc, y: { field: y.field, type: 'quantitative', title: y.title, scale: scale(o.logY, false) }, ...color },
  });
  if (o.rule) {
    layers.push({
      data: { values: [{ y: o.rule.y, label: o.rule.label ?? '' }] },
      layer: [
        { mark: { type: 'rule', strokeDash: [6, 4], color: '#444' }, encoding: { y: { field: 'y', type: 'quantitative' } } },
        {
          mark: { type: 'text', align: 'right', baseline: 'bottom', dy: -3, x: 'width', color: '#444' },
          encoding: { y: { field: 'y', type: 'quantitative' }, text: { field: 'label' } },
        },
      ],
    });
  }
  return {
    $schema: SCHEMA,
    title: title(o),
    width: o.width ?? 420,
    height: o.height ?? 260,
    data: { values },
    layer: layers,
    config: config(),
  };
}

/** Points, one colour per series, optionally with the y = x diagonal. */
export function scatter(o: ScatterOptions): VegaLiteSpec {
  const x = field(o.x);
  const y = field(o.y);
  const series = o.series === undefined ? undefined : field(o.series);
  const values = cleanRows(o.data, [x.field, y.field], [...(o.logX ? [x.field] : []), ...(o.logY ? [y.field] : [])]);
  const xEnc = { field: x.field, type: 'quantitative' as const, title: x.title, scale: scale(o.logX, false) };
  const yEnc = { field: y.field, type: 'quantitative' as const, title: y.title, scale: scale(o.logY, false) };
  const points = {
    mark: { type: 'point' as const, filled: true, size: 50, opacity: 0.8 },
    encoding: {
      x: xEnc,
      y: yEnc,
      ...(series ? { color: { field: series.field, type: 'nominal' as const, title: series.title } } : {}),
      ...(series ? { shape: { field: series.field, type: 'nominal' as const, title: series.title } } : {}),
    },
  };
  const base = { $schema: SCHEMA, title: title(o), width: o.width ?? 360, height: o.height ?? 300, data: { values }, config: config() };
  if (!o.identityLine) return { ...base, ...points };
  // The diagonal spans the data's joint range so it is visible whatever the scales are.
  const all = values.flatMap((r) => [r[x.field], r[y.field]]).filter((v): v is number => typeof v === 'number');
  const lo = all.length ? Math.min(...all) : 0;
  const hi = all.length ? Math.max(...all) : 1;
  const diagonal = {
    data: { values: [{ [x.field]: lo, [y.field]: lo }, { [x.field]: hi, [y.field]: hi }] },
    mark: { type: 'line' as const, strokeDash: [6, 4], color: '#888' },
    encoding: { x: xEnc, y: yEnc },
  };
  return { ...base, layer: [diagonal, points] };
}

/** Bars per category, one bar per group side by side (memory or time per method), optionally with error bars. */
export function groupedBars(o: GroupedBarsOptions): VegaLiteSpec {
  const category = field(o.category);
  const group = field(o.group);
  const value = field(o.value);
  const errFields = o.errorBar ? [o.errorBar.lower, o.errorBar.upper] : [];
  const values = cleanRows(o.data, [value.field, ...errFields], o.logY ? [value.field, ...errFields] : []);
  const shared = {
    x: { field: category.field, type: 'nominal' as const, title: category.title, axis: { labelAngle: 0 }, sort: null },
    xOffset: { field: group.field, type: 'nominal' as const, sort: null },
  };
  const bars = {
    mark: { type: 'bar' as const },
    encoding: {
      ...shared,
      // Grouped, never stacked: a stack would also start every bar at 0, which a log axis cannot show.
      y: { field: value.field, type: 'quantitative' as const, title: value.title, scale: scale(o.logY, true), stack: null },
      color: { field: group.field, type: 'nominal' as const, title: group.title, sort: null },
    },
  };
  const layer: NonNullable<Extract<TopLevelSpec, { layer: unknown }>['layer']> = [bars];
  if (o.errorBar) {
    layer.push({
      mark: { type: 'rule', color: '#222' },
      encoding: {
        ...shared,
        y: { field: o.errorBar.lower, type: 'quantitative' },
        y2: { field: o.errorBar.upper },
      },
    });
  }
  return {
    $schema: SCHEMA,
    title: title(o),
    // With an xOffset channel a width step is per bar, so the figure grows with methods × categories.
    width: o.width ?? { step: 24 },
    height: o.height ?? 260,
    data: { values },
    layer,
    config: config(),
  } as VegaLiteSpec;
}

/** Several figures side by side under one title (e.g. memory and time per method as one PNG). */
export function sideBySide(figureTitle: string, specs: VegaLiteSpec[]): VegaLiteSpec {
  // Sub-specs keep their own data and titles; $schema and config only belong at the top level.
  const parts = specs.map(({ $schema: _schema, config: _config, ...rest }) => rest);
  return { $schema: SCHEMA, title: { text: figureTitle, offset: 12 }, hconcat: parts, spacing: 30, config: config() } as VegaLiteSpec;
}
