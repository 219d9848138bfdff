/** @file Argument checks of the float64 reference, raising the same named errors as the raw ops for the same mistakes. */

import { InvalidArgumentError, type ShapeError } from '../errors';

/** A value as a message shows it (strings quoted; never throws). */
export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(show).join(', ')}]`;
  try {
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/** undefined/null or a plain object whose keys are all in `known` (a typo would otherwise be ignored). */
export function checkOptions(op: string, options: unknown, known: readonly string[]): Record<string, unknown> {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new InvalidArgumentError(`${op}: options must be an object { ${known.join(', ')} }, got ${show(options)}`);
  }
  const unknown = Object.keys(options).filter((k) => !known.includes(k));
  if (unknown.length > 0)
    throw new InvalidArgumentError(`${op}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${known.join(', ')})`);
  return options as Record<string, unknown>;
}

/** A flag must be a boolean ('false' or 1 would be read as true). */
export function checkBoolean(op: string, what: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new InvalidArgumentError(`${op}: ${what} must be true or false, got ${show(v)}`);
  return v;
}

/** An array of integers >= `min`, else `Err` (ShapeError for shapes and axes, InvalidArgumentError for slice bounds). */
export function checkIntList(op: string, what: string, v: unknown, Err: typeof ShapeError | typeof InvalidArgumentError, min = -Infinity): number[] {
  if (!Array.isArray(v)) throw new Err(`${op}: ${what} must be an array of integers, got ${show(v)}`);
  for (let i = 0; i < v.length; i++) {
    const d: unknown = v[i];
    if (!Number.isInteger(d) || (d as number) < min)
      throw new Err(`${op}: ${what} ${show(v)} holds ${show(d)} at ${i}, not an integer${min > -Infinity ? ` >= ${min}` : ''}`);
  }
  return v as number[];
}
