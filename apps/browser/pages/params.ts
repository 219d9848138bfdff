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

function check(key: string, raw: string, spec: ParamSpec): number {
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
 * The parameters of `search` (a URL's `?…` part) over the specs' defaults. An unknown parameter (a typo such as
 * `?trails=5`) or a repeated one is a DemoParamError too, since it would otherwise be ignored without a word.
 */
export function parseParams<S extends Record<string, ParamSpec>>(specs: S, search: string): ParamValues<S> {
  const query = new URLSearchParams(search);
  const out: Record<string, number> = {};
  for (const [key, spec] of Object.entries(specs)) out[key] = spec.value;
  const seen = new Set<string>();
  for (const [key, raw] of query) {
    if (!Object.hasOwn(specs, key)) throw new DemoParamError(`unknown URL parameter ${key} (this page takes ${Object.keys(specs).join(', ')})`);
    if (seen.has(key)) throw new DemoParamError(`URL parameter ${key} is given twice`);
    seen.add(key);
    out[key] = check(key, raw, specs[key]);
  }
  return out as ParamValues<S>;
}
