/** @file `metagrad report`: runs the registered report sections, renders their figures, writes report.md and results.json. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Device } from '@metagrad/tensor';
import { createNodeDevice } from '@metagrad/tensor/node';
import type { VegaLiteSpec } from './plots';
import { createProgress, type Progress } from './progress';
import { renderFigure } from './render-figure';
import { formatMarkdown, formatSummaryTable } from './report-markdown';
import { REPORT_SECTIONS } from './report-sections';

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

export interface ReportOptions {
  quick: boolean;
  out: string;
  json: boolean;
  /** Section ids to run (case-insensitive); all registered ones when absent. */
  only?: string[];
  /** Sections to choose from; the registered list by default (tests pass their own). */
  sections?: readonly ReportSection[];
  /** A device to borrow (not destroyed); by default one is created for the run and destroyed afterwards. */
  device?: Device;
  /** Output streams, for tests. */
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream & { isTTY?: boolean };
}

export interface FigureRecord {
  name: string;
  /** Paths relative to the output directory, as report.md links them. */
  svg: string;
  png: string;
}

export interface SectionRecord {
  id: string;
  title: string;
  paperFigure: string;
  status: 'ok' | 'error';
  error?: string;
  seconds: number;
  summary: SummaryRow[];
  figures: FigureRecord[];
  json: unknown;
}

/** The shape of results.json and of `--json` output. */
export interface ReportResults {
  kind: 'metagrad-report';
  version: 1;
  date: string;
  mode: 'quick' | 'full';
  adapter: Device['adapter'];
  seconds: number;
  sections: SectionRecord[];
}

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

/** File-name stem safe on every filesystem and in Markdown links. */
function fileStem(id: string, name: string): string {
  return `${id}-${name}`.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '');
}

/** Runs the sections one after another on one device; a failing section is recorded and the rest still run. */
export async function runReport(options: ReportOptions): Promise<ReportResults> {
  const sections = selectSections(options.sections ?? REPORT_SECTIONS, options.only);
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const log = (message: string): void => {
    if (!options.json) stderr.write(message + '\n');
  };
  const started = performance.now();
  const device = options.device ?? (await createNodeDevice());
  const records: SectionRecord[] = [];
  try {
    mkdirSync(join(options.out, 'figures'), { recursive: true });
    for (const [index, section] of sections.entries()) {
      log(`[${index + 1}/${sections.length}] ${section.id} — ${section.title}`);
      records.push(await runSection(section, options, device, stderr, log));
    }
  } finally {
    if (!options.device) device.destroy();
  }
  const results: ReportResults = {
    kind: 'metagrad-report',
    version: 1,
    date: new Date().toISOString(),
    mode: options.quick ? 'quick' : 'full',
    adapter: device.adapter,
    seconds: (performance.now() - started) / 1000,
    sections: records,
  };
  writeFileSync(join(options.out, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(join(options.out, 'report.md'), formatMarkdown(results));
  if (options.json) stdout.write(JSON.stringify(results, null, 2) + '\n');
  else {
    const figures = results.sections.reduce((n, s) => n + s.figures.length, 0);
    stdout.write(`${formatSummaryTable(results)}\nwrote ${join(options.out, 'report.md')}, results.json and ${figures} figure${figures === 1 ? '' : 's'} (PNG + SVG)\n`);
  }
  return results;
}

async function runSection(
  section: ReportSection,
  options: ReportOptions,
  device: Device,
  stderr: NodeJS.WritableStream & { isTTY?: boolean },
  log: (message: string) => void,
): Promise<SectionRecord> {
  const t0 = performance.now();
  const record: SectionRecord = { id: section.id, title: section.title, paperFigure: section.paperFigure, status: 'ok', seconds: 0, summary: [], figures: [], json: null };
  const ctx: SectionContext = {
    device,
    quick: options.quick,
    progress: (total, label) => createProgress({ total, label: `${section.id} ${label}`, json: options.json, stream: stderr }),
    log: (message) => log(`  ${message}`),
  };
  try {
    const result = await section.run(ctx);
    record.summary = result.summary;
    record.json = result.json;
    const names = new Set<string>();
    for (const figure of result.figures) {
      const stem = fileStem(section.id, figure.name);
      if (names.has(stem)) throw new ReportOptionError(`section ${section.id} has two figures named '${figure.name}'`);
      names.add(stem);
      const paths = await renderFigure(figure.spec, join(options.out, 'figures', stem));
      record.figures.push({ name: figure.name, svg: relative(options.out, paths.svg), png: relative(options.out, paths.png) });
    }
  } catch (e) {
    record.status = 'error';
    record.error = `${(e as Error).name ?? 'Error'}: ${(e as Error).message ?? String(e)}`;
    log(`  ${section.id} failed: ${record.error}`);
  }
  record.seconds = (performance.now() - t0) / 1000;
  return record;
}

function parseOnly(sections: readonly ReportSection[]) {
  return (value: string): string[] => {
    const ids = value.split(',').map((s) => s.trim()).filter(Boolean);
    try {
      selectSections(sections, ids);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
    return ids;
  };
}

/** Adds `report [--quick|--full] [--out dir] [--json] [--only ids]` to the CLI. */
export function registerReportCommand(program: Command, sections: readonly ReportSection[] = REPORT_SECTIONS): Command {
  return program
    .command('report')
    .description('run the experiments (quick variants by default) and write report.md, one PNG and SVG per figure, and results.json')
    .addOption(new Option('--quick', 'quick variants (the default)').conflicts('full'))
    .addOption(new Option('--full', 'full variants, as in the papers (slow)'))
    .addOption(new Option('--out <dir>', 'output directory').default('report'))
    .option('--json', 'print results.json on stdout instead of the summary table')
    .addOption(new Option('--only <ids>', `comma-separated section names or numbers (${sectionChoices(sections)})`).argParser(parseOnly(sections)))
    .action(async (opts: { quick?: boolean; full?: boolean; out: string; json?: boolean; only?: string[] }) => {
      const results = await runReport({ quick: !opts.full, out: opts.out, json: Boolean(opts.json), only: opts.only, sections });
      if (results.sections.some((s) => s.status === 'error')) process.exitCode = 1;
    });
}
