/** @file Small summary statistics shared by the benches and the experiments. */

/** The middle value (the upper one of the two middles for an even count); NaN for none. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}
