/**
 * @file The report-section contract: what an experiment (E1…E8, or the built-in `selftest`) returns to whoever runs
 * it (the `metagrad` CLI renders the figures and writes report.md / results.json), and how sections are picked by
 * name or number. Plain data and Vega-Lite specs only: nothing here renders or touches the file system.
 */
import type { Device } from '@metagrad/tensor';
import type { VegaLiteSpec } from './plots';

/** One headline number of a section, set beside what the paper reports. */
export interface SummaryRow {
  metric: string;
  value: number | string;
  /** The paper's value or claim, as the reader should compare it (`≈ 0.9 (Fig. 2)`, `EvoGrad < T1–T2`). */
  paper: string;
  /** Whether the result reproduces the paper's claim; null where there is nothing to judge. */
  pass: boolean | null;
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
  return [...sections].sort((a, b) => rank(a) - rank(b)).map(sectionChoice).join(', ');
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
    throw new ReportOptionError(`unknown report section${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `'${u}'`).join(', ')} (choose from ${sectionChoices(sections)})`);
  }
  return sections.filter((s) => names(s).some((n) => wanted.has(n)));
}
