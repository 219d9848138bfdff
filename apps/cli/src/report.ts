/** @file `metagrad report`: runs the registered report sections, renders their figures, writes report.md and results.json. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Device } from '@metagrad/tensor';
import { createNodeDevice } from '@metagrad/tensor/node';
import {
  ReportOptionError,
  isSeeded,
  plainJson,
  sectionChoices,
  selectSections,
  type ReportSection,
  type SectionContext,
  type SectionResult,
  type SeededSection,
  type SeedRecord,
  type SummaryRow,
} from '@metagrad/experiments';
import { REPORT_SECTIONS } from '@metagrad/experiments/node';
import { createProgress } from './progress';
import { renderFigure } from './render-figure';
import { SUMMARY_WIDTH, formatMarkdown, formatSummaryTable } from './report-markdown';
import { codeVersion, writeUnitFile } from './seeds';

export {
  ReportOptionError,
  sectionChoice,
  sectionChoices,
  sectionNumber,
  selectSections,
  type Figure,
  type ReportSection,
  type SectionContext,
  type SectionResult,
  type SummaryRow,
} from '@metagrad/experiments';
/** commander's classes, for callers that mount the report command on their own program (tests). */
export { Command, CommanderError } from 'commander';

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
  /** Seeded sections: run these seeds instead of the section's defaults (each written to `<out>/seeds/<id>/`). */
  seeds?: number[];
  /** Seeded sections: run the non-seeded extras too (default: when `seeds` is not given). */
  extras?: boolean;
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
  /** `metagrad merge`: the directories merged and the code versions of their files. */
  merged?: { dirs: string[]; codeVersions: string[] };
}

/** File-name stem safe on every filesystem and in Markdown links. */
function fileStem(id: string, name: string): string {
  return `${id}-${name}`
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** Runs the sections one after another on one device; a failing section is recorded and the rest still run. */
export async function runReport(options: ReportOptions): Promise<ReportResults> {
  const sections = selectSections(options.sections ?? REPORT_SECTIONS, options.only);
  const _stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const log = (message: string): void => {
    if (!options.json) stderr.write(`${message}\n`);
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
  return finishReport(records, { ...options, adapter: device.adapter, seconds: (performance.now() - started) / 1000 });
}

/** Writes results.json and report.md for finished sections and prints the summary table (or the JSON). */
export function finishReport(
  records: SectionRecord[],
  options: Pick<ReportOptions, 'quick' | 'out' | 'json' | 'stdout'> & {
    adapter: Device['adapter'];
    seconds: number;
    merged?: ReportResults['merged'];
  },
): ReportResults {
  const stdout = options.stdout ?? process.stdout;
  const results: ReportResults = {
    kind: 'metagrad-report',
    version: 1,
    date: new Date().toISOString(),
    mode: options.quick ? 'quick' : 'full',
    adapter: options.adapter,
    seconds: options.seconds,
    sections: records,
    ...(options.merged ? { merged: options.merged } : {}),
  };
  mkdirSync(options.out, { recursive: true });
  writeFileSync(join(options.out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(options.out, 'report.md'), formatMarkdown(results));
  if (options.json) stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else {
    const figures = results.sections.reduce((n, s) => n + s.figures.length, 0);
    stdout.write(
      `${formatSummaryTable(results, summaryWidth(stdout))}\nwrote ${join(options.out, 'report.md')}, results.json and ${figures} figure${figures === 1 ? '' : 's'} (PNG + SVG)\n`,
    );
  }
  return results;
}

/** 100 columns, or the terminal's width when it is narrower (but at least 60). */
function summaryWidth(stream: NodeJS.WritableStream & { columns?: number }): number {
  const columns = stream.columns;
  return typeof columns === 'number' && columns >= 60 ? Math.min(SUMMARY_WIDTH, columns) : SUMMARY_WIDTH;
}

/** The context a section runs with: progress bars on `stderr` (none with `json`), notes through `log`. */
export function sectionContext(
  section: Pick<ReportSection, 'id'>,
  options: Pick<ReportOptions, 'quick' | 'json'>,
  device: Device,
  stderr: NodeJS.WritableStream & { isTTY?: boolean },
  log: (message: string) => void,
): SectionContext {
  return {
    device,
    quick: options.quick,
    progress: (total, label) => createProgress({ total, label: `${section.id} ${label}`, json: options.json, stream: stderr }),
    log: (message) => log(`  ${message}`),
  };
}

/**
 * Runs a seeded section's seeds (and, if asked, its extras) one at a time in this process, writing each result to
 * `<out>/seeds/<id>/` as it finishes; returns what `summarise` takes.
 */
export async function runSeedUnits(
  section: SeededSection,
  ctx: SectionContext,
  options: { seeds: number[]; extras: boolean; out: string; quick: boolean },
): Promise<{ perSeed: SeedRecord[]; extras: Record<string, unknown> }> {
  const base = {
    version: 1 as const,
    experiment: section.id,
    variant: options.quick ? ('quick' as const) : ('full' as const),
    codeVersion: codeVersion(),
    adapter: ctx.device.adapter,
  };
  const perSeed: SeedRecord[] = [];
  for (const seed of options.seeds) {
    const t0 = performance.now();
    const json = plainJson(await section.runSeed(ctx, seed));
    writeUnitFile(options.out, {
      ...base,
      kind: 'metagrad-seed',
      seed,
      date: new Date().toISOString(),
      seconds: (performance.now() - t0) / 1000,
      json,
    });
    perSeed.push({ seed, json });
  }
  const extras: Record<string, unknown> = {};
  if (options.extras) {
    for (const [name, fn] of Object.entries(section.extras ?? {})) {
      const t0 = performance.now();
      const json = plainJson(await fn(ctx));
      writeUnitFile(options.out, {
        ...base,
        kind: 'metagrad-extra',
        extra: name,
        date: new Date().toISOString(),
        seconds: (performance.now() - t0) / 1000,
        json,
      });
      extras[name] = json;
    }
  }
  return { perSeed, extras };
}

async function runSection(
  section: ReportSection,
  options: ReportOptions,
  device: Device,
  stderr: NodeJS.WritableStream & { isTTY?: boolean },
  log: (message: string) => void,
): Promise<SectionRecord> {
  const ctx = sectionContext(section, options, device, stderr, log);
  return recordSection(section, options.out, log, async () => {
    if (!isSeeded(section)) return section.run(ctx);
    const seeds = options.seeds ?? section.defaultSeeds(options.quick);
    const { perSeed, extras } = await runSeedUnits(section, ctx, {
      seeds,
      extras: options.extras ?? options.seeds === undefined,
      out: options.out,
      quick: options.quick,
    });
    return section.summarise(perSeed, { quick: options.quick, log: ctx.log, extras });
  });
}

/** Runs `produce` (a section's run, or its summary of per-seed files) and renders its figures into `<out>/figures`. */
export async function recordSection(
  section: Pick<ReportSection, 'id' | 'title' | 'paperFigure'>,
  out: string,
  log: (message: string) => void,
  produce: () => Promise<SectionResult> | SectionResult,
): Promise<SectionRecord> {
  const t0 = performance.now();
  const record: SectionRecord = {
    id: section.id,
    title: section.title,
    paperFigure: section.paperFigure,
    status: 'ok',
    seconds: 0,
    summary: [],
    figures: [],
    json: null,
  };
  try {
    const result = await produce();
    record.summary = result.summary;
    record.json = result.json;
    const names = new Set<string>();
    mkdirSync(join(out, 'figures'), { recursive: true });
    for (const figure of result.figures) {
      const stem = fileStem(section.id, figure.name);
      if (names.has(stem)) throw new ReportOptionError(`section ${section.id} has two figures named '${figure.name}'`);
      names.add(stem);
      const paths = await renderFigure(figure.spec, join(out, 'figures', stem));
      record.figures.push({ name: figure.name, svg: relative(out, paths.svg), png: relative(out, paths.png) });
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
    const ids = value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
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
      const results = await runReport({
        quick: !opts.full,
        out: opts.out,
        json: Boolean(opts.json),
        only: opts.only,
        sections,
      });
      if (results.sections.some((s) => s.status === 'error')) process.exitCode = 1;
    });
}
