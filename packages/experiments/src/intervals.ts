/**
 * @file Intervals over seeds: percentile-bootstrap 95 % intervals of a mean and of a paired difference (seeds, and the
 * test tasks they share, resampled together), and the ✓ / ≈ / ✗ marks an interval supports.
 */

/** ✓ the interval supports the claim, ≈ it cannot tell, ✗ it supports the opposite. */
export type Mark = '✓' | '≈' | '✗';

export interface Interval {
  mean: number;
  ci95: [number, number];
  /** Seeds the interval rests on. */
  n: number;
}

/** One compared pair of methods, as results.json stores it: the mean of a − b and its interval. */
export interface PairDiff {
  a: string;
  b: string;
  meanDiff: number;
  ci95: [number, number];
  /** Seeds the interval rests on. */
  n?: number;
}

/** Per seed one value, or per seed one value per test task (tasks shared by every method of a seed). */
export type SeedValues = readonly number[] | readonly (readonly number[])[];

export interface BootstrapOptions {
  /** Bootstrap resamples (2000 keeps the interval's ends stable to about 1 % of its width). */
  resamples?: number;
  /** The resampling stream's seed: the same data and seed give the same interval. */
  seed?: number;
}

/** A small deterministic PRNG (mulberry32): the intervals must not change between runs of the report. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const average = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

/** The q-quantile of sorted values, linear between order statistics. */
function quantile(sorted: readonly number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function asMatrix(values: SeedValues): number[][] {
  return values.map((v) => (typeof v === 'number' ? [v] : [...v]));
}

function checkValues(what: string, m: number[][]): void {
  if (m.length === 0) throw new RangeError(`${what}: no seeds`);
  for (const [s, row] of m.entries()) {
    if (row.length === 0) throw new RangeError(`${what}: seed ${s} has no values`);
    if (row.length !== m[0].length) throw new RangeError(`${what}: seed ${s} has ${row.length} tasks, seed 0 has ${m[0].length}`);
    const bad = row.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new RangeError(`${what}: seed ${s} task ${bad} is ${row[bad]} (not finite)`);
  }
}

/**
 * Two-level bootstrap of the mean of a seeds × tasks matrix: seeds drawn with replacement, then tasks drawn with
 * replacement within each drawn seed. One seed gives an interval over its tasks only; one seed and one task, a point.
 */
function bootstrapMean(m: number[][], options: BootstrapOptions): [number, number] {
  const resamples = options.resamples ?? 2000;
  const next = rng(options.seed ?? 0x5eed);
  const seeds = m.length;
  const tasks = m[0].length;
  if (seeds === 1 && tasks === 1) return [m[0][0], m[0][0]];
  const means: number[] = [];
  for (let r = 0; r < resamples; r++) {
    let sum = 0;
    for (let s = 0; s < seeds; s++) {
      const row = m[Math.floor(next() * seeds)];
      let rowSum = 0;
      for (let t = 0; t < tasks; t++) rowSum += row[tasks === 1 ? 0 : Math.floor(next() * tasks)];
      sum += rowSum / tasks;
    }
    means.push(sum / seeds);
  }
  means.sort((x, y) => x - y);
  return [quantile(means, 0.025), quantile(means, 0.975)];
}

/** The mean over seeds (of each seed's mean over tasks) with a 95 % bootstrap interval. */
export function meanInterval(values: SeedValues, options: BootstrapOptions = {}): Interval {
  const m = asMatrix(values);
  checkValues('meanInterval', m);
  return { mean: average(m.map(average)), ci95: bootstrapMean(m, options), n: m.length };
}

/**
 * The paired difference a − b: seed s of a and seed s of b ran on the same data and (2-D input) the same test tasks,
 * so the bootstrap resamples the per-seed, per-task differences and keeps every pairing.
 */
export function pairedDiff(a: string, valuesA: SeedValues, b: string, valuesB: SeedValues, options: BootstrapOptions = {}): PairDiff {
  const ma = asMatrix(valuesA);
  const mb = asMatrix(valuesB);
  checkValues(`pairedDiff(${a})`, ma);
  checkValues(`pairedDiff(${b})`, mb);
  if (ma.length !== mb.length || ma[0].length !== mb[0].length) {
    throw new RangeError(
      `pairedDiff: ${a} has ${ma.length} seeds × ${ma[0].length} tasks, ${b} ${mb.length} × ${mb[0].length}; a paired interval needs the same`,
    );
  }
  const diff = ma.map((row, s) => row.map((x, t) => x - mb[s][t]));
  return { a, b, meanDiff: average(diff.map(average)), ci95: bootstrapMean(diff, options), n: diff.length };
}

/** Every pair of methods (in the given order, a before b), paired as above. */
export function allPairs(methods: ReadonlyMap<string, SeedValues> | Record<string, SeedValues>, options: BootstrapOptions = {}): PairDiff[] {
  const entries = methods instanceof Map ? [...methods.entries()] : Object.entries(methods);
  const pairs: PairDiff[] = [];
  for (let i = 0; i < entries.length; i++) {
    for (let j = i + 1; j < entries.length; j++) pairs.push(pairedDiff(entries[i][0], entries[i][1], entries[j][0], entries[j][1], options));
  }
  return pairs;
}

/** One seed without tasks: a zero-width "interval" that supports nothing (the marks give ≈ for it). */
function isPoint(x: { ci95: readonly [number, number]; n?: number }): boolean {
  return x.ci95[0] === x.ci95[1] && (x.n ?? 1) < 2;
}

/** The mark for a claim about a − b (`'<'`: a is lower, e.g. a lower test error): from where 0 lies in its interval. */
export function markDiff(pair: Pick<PairDiff, 'ci95' | 'n'>, claim: '<' | '>'): Mark {
  const [lo, hi] = pair.ci95;
  if (isPoint(pair)) return '≈';
  const supports = claim === '<' ? hi < 0 : lo > 0;
  const opposes = claim === '<' ? lo > 0 : hi < 0;
  return supports ? '✓' : opposes ? '✗' : '≈';
}

/** The mark for a threshold goal on a quantity (`≤ 0.5`): ✓ if the whole interval meets it, ✗ if none of it does. */
export function markGoal(interval: { ci95: readonly [number, number]; n?: number }, op: '<=' | '>=', goal: number): Mark {
  const [lo, hi] = interval.ci95;
  if (isPoint(interval)) return '≈';
  const meets = op === '<=' ? hi <= goal : lo >= goal;
  const fails = op === '<=' ? lo > goal : hi < goal;
  return meets ? '✓' : fails ? '✗' : '≈';
}

/** `0.42 [0.38, 0.47]` at the given significant digits, for the report's tables (`0.42` for a zero-width interval). */
export function formatInterval(mean: number, ci95: readonly [number, number], digits = 3): string {
  const f = (x: number) => Number(x.toPrecision(digits)).toString();
  // A zero-width interval (one seed without tasks) is shown as the point it is.
  if (ci95[0] === ci95[1] && ci95[0] === mean) return f(mean);
  return `${f(mean)} [${f(ci95[0])}, ${f(ci95[1])}]`;
}

/** The mark of a check with no sampling noise (a bound on a deterministic error, a sign convention): ✓ or ✗. */
export function markCheck(ok: boolean): Mark {
  return ok ? '✓' : '✗';
}

/** The central 95 % of the values themselves (2.5th to 97.5th percentile): where one seed's result is expected to land. */
export function spread95(values: readonly number[]): [number, number] {
  if (values.length === 0) throw new RangeError('spread95: no values');
  const sorted = [...values].sort((x, y) => x - y);
  return [quantile(sorted, 0.025), quantile(sorted, 0.975)];
}

/** The mark for "value lies within the interval" (the paper's number within the spread of our seeds). */
export function markWithin(value: number, range: readonly [number, number]): Mark {
  return value >= range[0] && value <= range[1] ? '✓' : '✗';
}

/** The pair a − b from a list of pairs, flipped (b − a negated) if it was stored the other way round. */
export function findPair(pairs: readonly PairDiff[], a: string, b: string): PairDiff {
  const direct = pairs.find((p) => p.a === a && p.b === b);
  if (direct) return direct;
  const flipped = pairs.find((p) => p.a === b && p.b === a);
  if (!flipped) throw new RangeError(`findPair: no pair ${a} vs ${b} (have ${pairs.map((p) => `${p.a}–${p.b}`).join(', ')})`);
  return { ...flipped, a, b, meanDiff: -flipped.meanDiff, ci95: [-flipped.ci95[1], -flipped.ci95[0]] };
}

/** The mark for a goal band (`30 ± 6`, `|d| ≤ 1`): ✓ if the whole interval lies inside [lo, hi], ✗ if none of it does. */
export function markBand(interval: { ci95: readonly [number, number]; n?: number }, lo: number, hi: number): Mark {
  const [a, b] = interval.ci95;
  if (isPoint(interval)) return '≈';
  return a >= lo && b <= hi ? '✓' : b < lo || a > hi ? '✗' : '≈';
}

/** Marks of several claims that must all hold: ✗ if any is ✗, ✓ if all are ✓, else ≈. */
export function markAll(marks: readonly Mark[]): Mark {
  return marks.includes('✗') ? '✗' : marks.every((m) => m === '✓') ? '✓' : '≈';
}

/** An interval as plain JSON for results.json: `{ mean, ci95, n }` with the values rounded to `digits` significant digits. */
export function intervalJson(interval: Interval, digits = 6): Interval {
  const r = (x: number) => Number(x.toPrecision(digits));
  return { mean: r(interval.mean), ci95: [r(interval.ci95[0]), r(interval.ci95[1])], n: interval.n };
}
