/**
 * @file The demos' URL parameters, checked: each is a finite number within its range (and an integer where it
 * counts something), so `?steps=` (read as 0 by Number), `?size=0` (an endless halving loop) or `?batch=2.5` is
 * an error shown on the page instead of a hang or a silently different run. No DOM here, so it is unit-tested.
 */

/** One parameter: its default and what values make sense. */
export interface ParamSpec {
  value: number;
  /** Must be an integer (a count, a seed, a 0/1 switch). */
  integer?: boolean;
  /** Inclusive bounds. */
  min?: number;
  max?: number;
  /** Must be > 0 (learning rates, scales). */
  positive?: boolean;
}

export type ParamValues<S extends Record<string, ParamSpec>> = { [K in keyof S]: number };

export class DemoParamError extends Error {
  override name = 'DemoParamError';
}

function describeRule(spec: ParamSpec): string {
  const parts = [spec.integer ? 'an integer' : 'a number'];
  if (spec.positive) parts.push('> 0');
  if (spec.min !== undefined && spec.max !== undefined) parts.push(`in [${spec.min}, ${spec.max}]`);
  else if (spec.min !== undefined) parts.push(`≥ ${spec.min}`);
  else if (spec.max !== undefined) parts.push(`≤ ${spec.max}`);
  return parts.join(' ');
}

/** One raw value checked against its spec; a DemoParamError naming the rule when it does not fit. */
export function checkParam(key: string, raw: string, spec: ParamSpec): number {
  // Number('') and Number('  ') are 0, Number('0x10') is 16: accept plain decimal notation only.
  const plain = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw.trim());
  const value = plain ? Number(raw) : NaN;
  const ok =
    Number.isFinite(value) &&
    (!spec.integer || Number.isInteger(value)) &&
    (!spec.positive || value > 0) &&
    (spec.min === undefined || value >= spec.min) &&
    (spec.max === undefined || value <= spec.max);
  if (!ok) throw new DemoParamError(`URL parameter ${key}=${JSON.stringify(raw)} is not valid: ${key} must be ${describeRule(spec)} (default ${spec.value})`);
  return value;
}

/**
 * The parameters of `search` (a URL's `?…` part) and `hash` (`#K=2&tau=0.3`, as TensorFlow Playground writes
 * them) over the specs' defaults. An unknown parameter (a typo such as `?trails=5`) or a repeated one (also one
 * given in both parts) is a DemoParamError too, since it would otherwise be ignored without a word.
 */
export function parseParams<S extends Record<string, ParamSpec>>(specs: S, search: string, hash = ''): ParamValues<S> {
  const query = [...new URLSearchParams(search), ...new URLSearchParams(hash.replace(/^#/, ''))];
  const out: Record<string, number> = {};
  for (const [key, spec] of Object.entries(specs)) out[key] = spec.value;
  const seen = new Set<string>();
  for (const [key, raw] of query) {
    if (!Object.hasOwn(specs, key)) throw new DemoParamError(`unknown URL parameter ${key} (this page takes ${Object.keys(specs).join(', ')})`);
    if (seen.has(key)) throw new DemoParamError(`URL parameter ${key} is given twice`);
    seen.add(key);
    out[key] = checkParam(key, raw, specs[key]);
  }
  return out as ParamValues<S>;
}

/** A value as the URL shows it: the shortest decimal that reads back as the same number (0.05, 1e-7, 300). */
function formatValue(value: number): string {
  return String(value);
}

/**
 * The query string (`?K=2&tau=0.3`, or '' when everything is at its default) that `parseParams` reads back as
 * `values`: only the parameters that differ from their defaults, in the specs' order, so a shared link stays short
 * and says what was changed.
 */
export function formatParams<S extends Record<string, ParamSpec>>(specs: S, values: ParamValues<S>): string {
  const query = new URLSearchParams();
  for (const [key, spec] of Object.entries(specs)) {
    const value = values[key];
    if (value !== spec.value) query.set(key, formatValue(value));
  }
  const text = query.toString();
  return text === '' ? '' : `?${text}`;
}
