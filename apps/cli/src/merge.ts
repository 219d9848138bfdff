/**
 * @file `metagrad merge <dir…> --out <dir>` and the local `--jobs N` runner: summaries recomputed from per-seed files
 * (layout and flags: ./seeds.ts), child processes that each run some seeds.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Device } from '@metagrad/tensor';
import { isSeeded, type ReportSection } from '@metagrad/experiments';
import { REPORT_SECTIONS } from '@metagrad/experiments/node';
import { createDawnStderrFilter } from '../stderr-filter.mjs';
import { createNodeDevice } from '@metagrad/tensor/node';
import { finishReport, recordSection, runSeedUnits, sectionContext, type ReportResults, type SectionRecord } from './report';
import {
  MixedVariantError,
  SeedFileError,
  collectUnitFiles,
  copyUnitFiles,
  extraPath,
  formatSeedList,
  seedPath,
  shown,
  splitForJobs,
  summaryInputs,
  type CollectedExperiment,
} from './seeds';

export interface MergeOptions {
  /** Directories (searched recursively) or single files holding per-seed and extra files. */
  inputs: string[];
  out: string;
  json: boolean;
  /** Sections to summarise with (the registered ones by default; tests pass their own). */
  sections?: readonly ReportSection[];
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Copy the files into `<out>/seeds/` (default true; `run --jobs` wrote them there already). */
  copy?: boolean;
  /** Recorded in results.json as the merged directories (default: `inputs`). */
  label?: string[];
}

/** Summarises every experiment found under `inputs` into one report in `out` (no device). */
export async function mergeSeedFiles(options: MergeOptions): Promise<ReportResults> {
  const started = performance.now();
  const stderr = options.stderr ?? process.stderr;
  const log = (message: string): void => {
    if (!options.json) stderr.write(`${message}\n`);
  };
  const collected = collectUnitFiles(options.inputs);
  if (collected.length === 0) throw new SeedFileError(`no per-seed files (seeds/<experiment>/seed-<n>.json) under ${options.inputs.map(shown).join(', ')}`);
  const variants = new Set(collected.map((c) => c.variant));
  if (variants.size > 1) {
    const q = collected.find((c) => c.variant === 'quick')!;
    const f = collected.find((c) => c.variant === 'full')!;
    throw new MixedVariantError(`one report cannot hold quick and full results (quick: ${q.experiment}, full: ${f.experiment}); merge them separately`);
  }
  const sections = options.sections ?? REPORT_SECTIONS;
  const order = (c: CollectedExperiment) => sections.findIndex((s) => s.id === c.experiment);
  const records: SectionRecord[] = [];
  for (const c of [...collected].sort((a, b) => order(a) - order(b))) {
    const section = sections.find((s) => s.id === c.experiment);
    if (!section || !isSeeded(section))
      throw new SeedFileError(`${c.experiment} (${shown(c.seeds[0]?.path ?? c.extras[0].path)}) is not a seeded experiment of this metagrad`);
    if (c.seeds.length === 0) throw new SeedFileError(`${c.experiment}: only extras (${c.extras.map((e) => shown(e.path)).join(', ')}), no seed files`);
    if (options.copy !== false) copyUnitFiles(c, options.out);
    log(
      `${c.experiment}: ${c.seeds.length} seed(s) ${formatSeedList(c.seeds.map((s) => s.file.seed))}${c.extras.length ? `, extras ${c.extras.map((e) => e.file.extra).join(', ')}` : ''}`,
    );
    if (c.codeVersions.length > 1) log(`  note: files from ${c.codeVersions.length} code versions (${c.codeVersions.join(', ')})`);
    const { perSeed, extras } = summaryInputs(c);
    records.push(
      await recordSection(section, options.out, log, () => section.summarise(perSeed, { quick: c.variant === 'quick', log: (m) => log(`  ${m}`), extras })),
    );
  }
  const adapters = [
    ...new Set(
      collected
        .flatMap((c) => [...c.seeds, ...c.extras])
        .map((u) => u.file.adapter?.name)
        .filter((n): n is string => Boolean(n)),
    ),
  ];
  if (adapters.length > 1) log(`note: the files come from ${adapters.length} adapters (${adapters.join(', ')}); times in them are not comparable across files`);
  const first = collected.flatMap((c) => c.seeds).find((s) => s.file.adapter)?.file.adapter ?? null;
  const adapter = first && adapters.length > 1 ? { ...first, name: `mixed: ${adapters.join(', ')}` } : first;
  return finishReport(records, {
    quick: collected[0].variant === 'quick',
    out: options.out,
    json: options.json,
    stdout: options.stdout,
    adapter: (adapter ?? {
      name: 'unknown',
      vendor: '',
      architecture: '',
      device: '',
      description: '',
      backend: 'none',
      featureLevel: 'core',
      isFallbackAdapter: false,
    }) as Device['adapter'],
    seconds: (performance.now() - started) / 1000,
    merged: {
      dirs: options.label ?? options.inputs,
      codeVersions: [...new Set(collected.flatMap((c) => c.codeVersions))].sort(),
    },
  });
}

export interface JobsOptions {
  experiment: string;
  seeds: number[];
  jobs: number;
  quick: boolean;
  /** Run the section's extras, here, after the seeds (so a timing extra does not share the machine with them). */
  extras: boolean;
  out: string;
  /** Where the children's output goes, each line prefixed with its job. */
  stderr?: NodeJS.WritableStream;
}

/**
 * Runs the seeds in `jobs` child processes (`metagrad run <exp> --seeds <subset> --no-extras --no-merge --out <out>`,
 * this process's own node and entry), waits for all, then the extras (if asked) in this process, alone on the
 * machine; returns the files written. A failed child is an error naming its seeds, raised after the others finish
 * (their files stay, to merge later).
 */
export async function runSeedJobs(options: JobsOptions): Promise<string[]> {
  const stderr = options.stderr ?? process.stderr;
  const groups = splitForJobs(options.seeds, options.jobs);
  if (groups.length === 0) throw new RangeError('no seeds to run');
  const entry = process.argv[1];
  const failures: string[] = [];
  await Promise.all(
    groups.map(async (group, i) => {
      const tag = `[job ${i + 1}/${groups.length} seeds ${formatSeedList(group)}]`;
      const args = [
        ...process.execArgv,
        entry,
        'run',
        options.experiment,
        '--seeds',
        formatSeedList(group),
        '--no-merge',
        '--out',
        options.out,
        ...(options.quick ? ['--quick'] : []),
        '--no-extras',
      ];
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
      const filter = createDawnStderrFilter();
      const forward = (stream: NodeJS.ReadableStream) =>
        new Promise<void>((resolve) => {
          const lines = createInterface({ input: stream });
          lines.on('line', (line) => {
            const kept = filter(line);
            if (kept !== null && kept.trim() !== '') stderr.write(`${tag} ${kept}\n`);
          });
          lines.on('close', resolve);
        });
      const done = Promise.all([forward(child.stdout!), forward(child.stderr!)]);
      const code = await new Promise<number | null>((resolve) => {
        child.on('error', (e) => {
          stderr.write(`${tag} could not start: ${e.message}\n`);
          resolve(null);
        });
        child.on('close', (c) => resolve(c));
      });
      await done;
      if (code !== 0) failures.push(`job ${i + 1} (seeds ${formatSeedList(group)}) exited with ${code ?? 'an error'}`);
    }),
  );
  if (failures.length)
    throw new Error(
      `${failures.join('; ')}; the seeds that finished are in ${shown(options.out)}/seeds/${options.experiment}/ (merge them later with metagrad merge)`,
    );
  const section = REPORT_SECTIONS.find((s) => s.id === options.experiment);
  const extraNames = options.extras && section && isSeeded(section) ? Object.keys(section.extras ?? {}) : [];
  if (extraNames.length && section && isSeeded(section)) {
    const device = await createNodeDevice();
    try {
      const log = (m: string) => stderr.write(`[extras] ${m}\n`);
      await runSeedUnits(section, sectionContext(section, { quick: options.quick, json: false }, device, stderr, log), {
        seeds: [],
        extras: true,
        out: options.out,
        quick: options.quick,
      });
    } finally {
      device.destroy();
    }
  }
  return [...options.seeds.map((s) => seedPath(options.out, options.experiment, s)), ...extraNames.map((e) => extraPath(options.out, options.experiment, e))];
}
