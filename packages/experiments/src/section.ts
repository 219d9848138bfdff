/**
 * @file The report-section contract: what an experiment (E1…E8, or the built-in `selftest`) returns to whoever runs
 * it (the `metagrad` CLI renders the figures and writes report.md / results.json), and how sections are picked by
 * name or number. Plain data and Vega-Lite specs only: nothing here renders or touches the file system.
 */
import type { Device } from '@metagrad/tensor';
import type { VegaLiteSpec } from './plots';
import type { Mark } from './intervals';

export type { Mark };

/** One headline number of a section, set beside what the paper reports and the goal we judge it by. */
export interface SummaryRow {
  metric: string;
  /** A number, or text such as `0.42 [0.38, 0.47]` (the mean over seeds and its 95 % interval). */
  value: number | string;
  /** What the paper reports (`0.567 (Table 4)`, `EvoGrad < T1–T2`), or '–' where it reports nothing. */
  paper: string;
  /** Our threshold or claim that the mark judges (`≤ 0.5`, `lowest or tied`), or '–'. */
  goal: string;
  /**
   * ✓ the result (its interval, where there are seeds) supports the goal, ≈ it cannot tell, ✗ it supports the
   * opposite; null where there is nothing to judge.
   */
  mark: Mark | null;
}

export interface Figure {
  /** File-name stem, unique within the section (`hypergrad-vs-lambda`). */
  name: string;
  spec: VegaLiteSpec;
}

export interface SectionResult {
  summary: SummaryRow[];
  figures: Figure[];
  /** Everything the section measured, for results.json (plain JSON values only). */
  json: unknown;
}

export interface ProgressPayload {
  /** Short text shown after the ETA, e.g. `loss 0.123` or `cos 0.98`. */
  metric?: string;
}

/** A progress display for a long loop; the runner decides how (or whether) it is drawn. */
export interface Progress {
  /** Sets the number of finished units (steps, seeds, sizes). */
  update(value: number, payload?: ProgressPayload): void;
  increment(delta?: number, payload?: ProgressPayload): void;
  /** For loops whose length is only known once they start. */
  setTotal(total: number): void;
  /** Idempotent; restores the cursor and removes the signal handlers. */
  stop(): void;
}

/** What a section gets to run with. */
export interface SectionContext {
  device: Device;
  quick: boolean;
  /** A progress display that honours `--json` and the terminal; the section must stop it. */
  progress(total: number, label: string): Progress;
  /** A note for the person watching (stderr; silent with `--json`). */
  log(message: string): void;
}

/** One experiment of the report (E1…E8), or the built-in `selftest`. */
export interface ReportSection {
  id: string;
  title: string;
  /** Which paper figure or table this reproduces (`EvoGrad, Fig. 2`). */
  paperFigure: string;
  run(ctx: SectionContext): Promise<SectionResult>;
}

/** One seed's result as a seeded section's `summarise` gets it: plain JSON, exactly as written to `seed-<n>.json`. */
export interface SeedRecord {
  seed: number;
  json: unknown;
}

/** What `summarise` gets besides the seeds: no device (a merge of shards made elsewhere may have none). */
export interface SummaryContext {
  quick: boolean;
  log(message: string): void;
  /** The section's non-seeded units that ran (by name, their plain JSON); a missing one leaves its rows out. */
  extras: Record<string, unknown>;
}

/**
 * A section whose measurements repeat over seeds, run one seed at a time so seeds can be spread over processes and
 * machines (`metagrad run <exp> --seeds 0-9 --jobs N`, `metagrad merge`):
 * - `runSeed(ctx, seed)` runs everything that depends on the seed and returns plain JSON (no NaN/Infinity: they
 *   become null on the way through JSON, and `summarise` must expect that);
 * - `extras` are units that are not per seed (a side-by-side cost timing, a GPU cross-check), each run once;
 * - `summarise(perSeed, ctx)` builds the summary rows, intervals and figures from the per-seed JSON (in seed order)
 *   and whatever extras ran, without a device.
 * `run` (what `seeded()` adds) = the default seeds, then every extra, then summarise, on JSON round-tripped
 * exactly as a merge reads it back, so a run in one process and a merge of shards give the same results.
 */
export interface SeededSection extends ReportSection {
  defaultSeeds(quick: boolean): number[];
  runSeed(ctx: SectionContext, seed: number): Promise<unknown>;
  extras?: Record<string, (ctx: SectionContext) => Promise<unknown>>;
  summarise(perSeed: readonly SeedRecord[], ctx: SummaryContext): SectionResult | Promise<SectionResult>;
}

export function isSeeded(section: ReportSection): section is SeededSection {
  return typeof (section as Partial<SeededSection>).runSeed === 'function' && typeof (section as Partial<SeededSection>).summarise === 'function';
}

/** JSON in, JSON out: what a per-seed file holds once read back (NaN and ±Infinity become null, undefined fields vanish). */
export function plainJson<T = unknown>(value: unknown): T {
  return JSON.parse(JSON.stringify(value ?? null)) as T;
}

/** A seeded section with its `run`: the default seeds one at a time, every extra, then `summarise`. */
export function seeded(def: Omit<SeededSection, 'run'>): SeededSection {
  const section: SeededSection = {
    ...def,
    async run(ctx) {
      const perSeed: SeedRecord[] = [];
      for (const seed of def.defaultSeeds(ctx.quick)) perSeed.push({ seed, json: plainJson(await def.runSeed(ctx, seed)) });
      const extras: Record<string, unknown> = {};
      for (const [name, fn] of Object.entries(def.extras ?? {})) extras[name] = plainJson(await fn(ctx));
      return def.summarise(perSeed, { quick: ctx.quick, log: ctx.log, extras });
    },
  };
  return section;
}

/** A section name or number that matches nothing, or a section that breaks the contract (two figures, one name). */
export class ReportOptionError extends Error {
  override name = 'ReportOptionError';
}

/** The experiment number of a section (`e1` … `e8`, from its title `E1: …`), or null (selftest). */
export function sectionNumber(section: Pick<ReportSection, 'title'>): string | null {
  const m = /^(E\d+)\s*:/i.exec(section.title);
  return m ? m[1].toLowerCase() : null;
}

/** `e1 evograd-toy`, or the id alone: how a choice is listed in messages and help. */
export function sectionChoice(section: Pick<ReportSection, 'id' | 'title'>): string {
  const n = sectionNumber(section);
  return n ? `${n} ${section.id}` : section.id;
}

/** Every choice, in experiment-number order (selftest first): `selftest, e1 evograd-toy, e2 …`. */
export function sectionChoices(sections: readonly Pick<ReportSection, 'id' | 'title'>[]): string {
  const rank = (s: Pick<ReportSection, 'title'>): number => Number(sectionNumber(s)?.slice(1) ?? 0);
  return [...sections]
    .sort((a, b) => rank(a) - rank(b))
    .map(sectionChoice)
    .join(', ');
}

/**
 * Picks the sections named in `only` by id or experiment number (`e1`, case-insensitive), in registry order;
 * unknown names are an error that lists the known ones.
 */
export function selectSections(sections: readonly ReportSection[], only: string[] | undefined): ReportSection[] {
  if (!only || only.length === 0) return [...sections];
  const wanted = new Set(only.map((s) => s.trim().toLowerCase()).filter(Boolean));
  const names = (s: ReportSection): string[] => [s.id.toLowerCase(), ...(sectionNumber(s) ? [sectionNumber(s) as string] : [])];
  const known = new Set(sections.flatMap(names));
  const unknown = [...wanted].filter((id) => !known.has(id));
  if (unknown.length) {
    throw new ReportOptionError(
      `unknown report section${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `'${u}'`).join(', ')} (choose from ${sectionChoices(sections)})`,
    );
  }
  return sections.filter((s) => names(s).some((n) => wanted.has(n)));
}
