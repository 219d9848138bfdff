/** @file Typed builders for the report's figure kinds (lines with bands, scatter, grouped bars), returning Vega-Lite specs. */
import type { TopLevelSpec } from 'vega-lite';

/** A complete Vega-Lite spec; `renderFigure` compiles and draws it. */
export type VegaLiteSpec = TopLevelSpec;

/** One data row; fields are referenced by name from the builders' options. */
export type Row = Record<string, number | string | boolean | null>;

/**
 * A field name, or a field name with the axis/legend title to show for it. `integer` marks an axis that counts
 * (steps, epochs, K): whole-number ticks only. Left out, an x axis whose values are all integers counts.
 */
export type FieldRef = string | { field: string; title?: string; integer?: boolean };

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
  /** Field whose values are drawn as separate coloured lines (method, estimator, adapter): one colour each. */
  series?: FieldRef;
  /**
   * Field of a method's variants (T, K, a γ): one dash pattern each, in the legend, while the colour stays the
   * series'. Ten (method, variant) pairs so take as many colours as there are methods.
   */
  variant?: FieldRef;
  /** Field that splits lines without a legend entry or a colour of its own (seeds, starting points). */
  detail?: FieldRef;
  /** Join each line's points in this field's order instead of along x (trajectories that turn back). */
  order?: string;
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
  /** Field whose values are the bars inside each category (e.g. the method, or the seed). */
  group: FieldRef;
  /** Field the bars are coloured by; the group by default. Colouring by the category itself shows no legend. */
  color?: FieldRef;
  value: FieldRef;
  logY?: boolean;
  /** Fields holding an error bar's lower and upper end. */
  errorBar?: { lower: string; upper: string };
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

interface Field {
  field: string;
  title: string;
  integer?: boolean;
}

function field(ref: FieldRef): Field {
  return typeof ref === 'string' ? { field: ref, title: ref } : { field: ref.field, title: ref.title ?? ref.field, integer: ref.integer };
}

/** Shared look: one font everywhere, white background (PNG viewers show transparency as black or checkers). */
function config(): NonNullable<TopLevelSpec['config']> {
  return {
    font: FIGURE_FONT,
    background: 'white',
    title: { fontSize: 14, anchor: 'start', subtitleFontSize: 11, subtitleColor: '#555' },
    axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#e6e6e6' },
    // Opaque swatches: a band layer would otherwise lend its translucency to the shared colour legend.
    // labelLimit 0: a legend label is never cut to "backprop-euler, T…" (Vega's default stops at 160 px).
    legend: { labelFontSize: 11, titleFontSize: 12, symbolOpacity: 1, labelLimit: 0, titleLimit: 0 },
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

/** The finite numbers a field takes over the rows. */
function numbers(rows: Row[], fields: string[]): number[] {
  return rows.flatMap((r) => fields.map((f) => r[f])).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
}

/** The power of ten at or below `v` (> 0), robust to log10's rounding (log10(1000) = 2.9999999999999996). */
function decadeBelow(v: number): number {
  const e = Math.floor(Math.log10(v));
  return 10 ** e * 10 <= v ? 10 ** (e + 1) : 10 ** e;
}

function decadeAbove(v: number): number {
  const below = decadeBelow(v);
  return below === v ? v : below * 10;
}

/**
 * A log axis's domain: the data's extent with 4 % of its span (in log units) either side, never past the powers
 * of ten around the data. Vega's default `nice` rounds out to whole decades, so points on 0.48–0.62 were drawn on
 * a 0.1–1 axis and 4,096–262,144 on 1,000–1,000,000, squeezed into a fraction of the plot.
 */
export function logDomain(values: number[]): [number, number] | undefined {
  const positive = values.filter((v) => v > 0 && Number.isFinite(v));
  if (positive.length === 0) return undefined;
  const lo = Math.min(...positive);
  const hi = Math.max(...positive);
  // One value: a factor of 1.5 either side (a single point has no decade to stay within).
  if (lo === hi) return [lo / 1.5, hi * 1.5];
  const pad = 0.04 * Math.log10(hi / lo);
  return [Math.max(lo / 10 ** pad, decadeBelow(lo)), Math.min(hi * 10 ** pad, decadeAbove(hi))];
}

/**
 * Tick values for a log axis on `domain`: 1-2-5 per decade over more than 1.2 decades, 1-2-3-5-7 over a decade
 * or so, powers of ten alone past three decades. Undefined under half a decade, where Vega's own (linear-looking)
 * ticks are better. Vega's own log ticks label 2…9 and then drop "10" as overlapping "9".
 */
export function logTicks(domain: [number, number]): number[] | undefined {
  const [lo, hi] = domain;
  const span = Math.log10(hi / lo);
  if (!(span >= 0.5)) return undefined;
  const mantissas = span > 3 ? [1] : span > 1.2 ? [1, 2, 5] : [1, 2, 3, 5, 7];
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)) - 1; e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of mantissas) {
      // m·10^e written so 3·10⁻² is 0.03 exactly as a label, not 0.030000000000000002.
      const v = e < 0 ? m / 10 ** -e : m * 10 ** e;
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
    }
  }
  return out.length >= 2 ? out : undefined;
}

type Scale = { type: 'log'; domain?: [number, number]; nice: false } | { zero: boolean };

/** A linear scale (from zero when asked), or a log scale on the tight domain of `values`. */
function scale(log: boolean | undefined, zero: boolean, values: number[]): Scale {
  if (!log) return { zero };
  const domain = logDomain(values);
  return domain ? { type: 'log', domain, nice: false } : { type: 'log', nice: false };
}

/** Whether an axis counts: told by the field, or (where `auto`) every value is an integer. */
function counts(f: Field, values: number[], auto: boolean): boolean {
  if (f.integer !== undefined) return f.integer;
  return auto && values.length > 0 && values.every((v) => Number.isInteger(v));
}

/** Whole-number ticks with thousands separators: no 2.5 steps or 1.5 epochs between the counts. */
const COUNT_AXIS = { tickMinStep: 1, format: ',d' } as const;

interface Axis {
  tickMinStep?: number;
  format?: string;
  values?: number[];
}

/** The axis of a field: whole-number ticks where it counts, 1-2-5 values and short labels on a log scale. */
function axis(f: Field, values: number[], auto: boolean, scaled?: Scale): { axis?: Axis } {
  const out: Axis = counts(f, values, auto) ? { ...COUNT_AXIS } : {};
  if (scaled && 'type' in scaled && scaled.domain) {
    const ticks = logTicks(scaled.domain);
    if (ticks) {
      out.values = ticks;
      out.format ??= ',~g'; // 20,000 and 0.002, not 2e+4
    }
  }
  return Object.keys(out).length ? { axis: out } : {};
}

/** Dash patterns in the order variants first appear: the first solid, as is a method that has no variants. */
export const DASHES: number[][] = [
  [1, 0],
  [7, 4],
  [2, 3],
  [10, 3, 2, 3],
  [4, 2],
  [12, 6],
];

function dashEncoding(variant: Field, values: Row[]) {
  const seen = [...new Set(values.map((r) => String(r[variant.field])))];
  const named = seen.filter((v) => v !== '');
  const domain = seen.includes('') ? ['', ...named] : named;
  const range = domain.map((v) => (v === '' ? DASHES[0] : DASHES[named.indexOf(v) % DASHES.length]));
  return {
    field: variant.field,
    type: 'nominal' as const,
    title: variant.title,
    scale: { domain, range },
    // Dash swatches in a neutral grey (the colour is the method's); one variant alone needs no legend.
    legend:
      named.length < 2 && !domain.includes('')
        ? null
        : {
            values: named,
            symbolType: 'stroke',
            symbolStrokeWidth: 2,
            symbolSize: 300,
            // Vega-Lite leaves a dash legend's swatches without a stroke (invisible); symbolStrokeColor is ignored.
            encode: { symbols: { update: { stroke: { value: '#555' } } } },
          },
  };
}

/** Lines over x, one per series, optionally with a shaded band (mean ± std) and a horizontal reference. */
export function lineChart(o: LineChartOptions): VegaLiteSpec {
  const x = field(o.x);
  const y = field(o.y);
  const series = o.series === undefined ? undefined : field(o.series);
  const variant = o.variant === undefined ? undefined : field(o.variant);
  const detail = o.detail === undefined ? undefined : field(o.detail);
  const bandFields = o.band ? [o.band.lower, o.band.upper] : [];
  const cleaned = cleanRows(o.data, [x.field, y.field, ...bandFields], [...(o.logX ? [x.field] : []), ...(o.logY ? [y.field, ...bandFields] : [])]);
  // A method without variants (plain SGD beside EvoGrad K=2 and K=4) has none in its rows: it is drawn solid
  // and left out of the dash legend.
  const values = variant ? cleaned.map((r) => (r[variant.field] === undefined || r[variant.field] === null ? { ...r, [variant.field]: '' } : r)) : cleaned;
  const xs = numbers(values, [x.field]);
  const ys = [...numbers(values, [y.field, ...bandFields]), ...(o.rule && o.logY ? [o.rule.y] : [])];
  const xScale = scale(o.logX, false, xs);
  const xEnc = {
    field: x.field,
    type: 'quantitative' as const,
    title: x.title,
    scale: xScale,
    ...axis(x, xs, true, xScale),
  };
  const yScale = scale(o.logY, false, ys);
  const yAxis = axis(y, ys, false, yScale);
  const color = series ? { color: { field: series.field, type: 'nominal' as const, title: series.title } } : {};
  const dash = variant ? { strokeDash: dashEncoding(variant, values) } : {};
  const split = detail ? { detail: { field: detail.field, type: 'nominal' as const } } : {};
  const layers: NonNullable<Extract<TopLevelSpec, { layer: unknown }>['layer']> = [];
  if (o.band) {
    layers.push({
      mark: { type: 'area', opacity: 0.2 },
      encoding: {
        x: xEnc,
        y: { field: o.band.lower, type: 'quantitative', title: y.title, scale: yScale, ...yAxis },
        y2: { field: o.band.upper },
        ...color,
        // The band follows its line's variant and detail so two variants' bands are two areas, not one zigzag.
        ...(variant ? { detail: { field: variant.field, type: 'nominal' as const } } : split),
      },
    });
  }
  layers.push({
    mark: { type: 'line', point: o.points ?? true, strokeWidth: 2 },
    encoding: {
      x: xEnc,
      y: { field: y.field, type: 'quantitative', title: y.title, scale: yScale, ...yAxis },
      ...color,
      ...dash,
      ...split,
      ...(o.order ? { order: { field: o.order, type: 'quantitative' as const } } : {}),
    },
  });
  if (o.rule) {
    layers.push({
      data: { values: [{ y: o.rule.y, label: o.rule.label ?? '' }] },
      layer: [
        {
          mark: { type: 'rule', strokeDash: [6, 4], color: '#444' },
          encoding: { y: { field: 'y', type: 'quantitative' } },
        },
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
  const xs = numbers(values, [x.field]);
  const ys = numbers(values, [y.field]);
  // With the diagonal both axes span the joint range, so y = x is the same line whatever the scales.
  const joint = [...xs, ...ys];
  const xScale = scale(o.logX, false, o.identityLine ? joint : xs);
  const yScale = scale(o.logY, false, o.identityLine ? joint : ys);
  const xEnc = {
    field: x.field,
    type: 'quantitative' as const,
    title: x.title,
    scale: xScale,
    ...axis(x, xs, true, xScale),
  };
  const yEnc = {
    field: y.field,
    type: 'quantitative' as const,
    title: y.title,
    scale: yScale,
    ...axis(y, ys, false, yScale),
  };
  const points = {
    mark: { type: 'point' as const, filled: true, size: 50, opacity: 0.8 },
    encoding: {
      x: xEnc,
      y: yEnc,
      ...(series ? { color: { field: series.field, type: 'nominal' as const, title: series.title } } : {}),
      ...(series ? { shape: { field: series.field, type: 'nominal' as const, title: series.title } } : {}),
    },
  };
  const base = {
    $schema: SCHEMA,
    title: title(o),
    width: o.width ?? 360,
    height: o.height ?? 300,
    data: { values },
    config: config(),
  };
  if (!o.identityLine) return { ...base, ...points };
  // The diagonal spans the data's joint range so it is visible whatever the scales are.
  const all = values.flatMap((r) => [r[x.field], r[y.field]]).filter((v): v is number => typeof v === 'number');
  const lo = all.length ? Math.min(...all) : 0;
  const hi = all.length ? Math.max(...all) : 1;
  const diagonal = {
    data: {
      values: [
        { [x.field]: lo, [y.field]: lo },
        { [x.field]: hi, [y.field]: hi },
      ],
    },
    mark: { type: 'line' as const, strokeDash: [6, 4], color: '#888' },
    encoding: { x: xEnc, y: yEnc },
  };
  return { ...base, layer: [diagonal, points] };
}

/** Bars per category, one bar per group side by side (memory or time per method), optionally with error bars. */
export function groupedBars(o: GroupedBarsOptions): VegaLiteSpec {
  const category = field(o.category);
  const group = field(o.group);
  const colour = field(o.color ?? o.group);
  const value = field(o.value);
  const errFields = o.errorBar ? [o.errorBar.lower, o.errorBar.upper] : [];
  const values = cleanRows(o.data, [value.field, ...errFields], o.logY ? [value.field, ...errFields] : []);
  // Bars grouped by the category itself (one bar per method, coloured by method) need no offset: an offset
  // would reserve a slot per group in every category and leave 7 of 8 slots empty.
  const offset = group.field !== category.field;
  const shared = {
    x: {
      field: category.field,
      type: 'nominal' as const,
      title: category.title,
      axis: { labelAngle: 0, labelLimit: 0 },
      sort: null,
    },
    ...(offset ? { xOffset: { field: group.field, type: 'nominal' as const, sort: null } } : {}),
  };
  const ys = numbers(values, [value.field, ...errFields]);
  const yScale = scale(o.logY, true, ys);
  const bars = {
    mark: { type: 'bar' as const },
    encoding: {
      ...shared,
      // Grouped, never stacked: a stack would also start every bar at 0, which a log axis cannot show.
      y: {
        field: value.field,
        type: 'quantitative' as const,
        title: value.title,
        scale: yScale,
        stack: null,
        ...axis(value, ys, false, yScale),
      },
      color: {
        field: colour.field,
        type: 'nominal' as const,
        title: colour.title,
        sort: null,
        // The x axis already names each bar when the colour is the category.
        ...(colour.field === category.field ? { legend: null } : {}),
      },
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
  const longest = Math.max(0, ...values.map((r) => String(r[category.field]).length));
  return {
    $schema: SCHEMA,
    title: title(o),
    // With an xOffset channel a width step is per bar, so the figure grows with methods × categories; without
    // one a step is a whole category, wide enough for its label (≈ 7 px a character at 11 px).
    width: o.width ?? (offset ? { step: 24 } : { step: Math.max(40, Math.min(140, 7 * longest + 12)) }),
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
  return {
    $schema: SCHEMA,
    title: { text: figureTitle, offset: 12 },
    hconcat: parts,
    spacing: 30,
    config: config(),
  } as VegaLiteSpec;
}
