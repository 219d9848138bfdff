/**
 * @file Reading the previous bench results file and merging a run into it. A file that cannot be parsed must not
 * cost the run that just finished: it is moved aside (kept for inspection) and the new results are written alone.
 */
import { existsSync, readFileSync, renameSync } from 'node:fs';

/** When and from which source a bench's entry was recorded. */
export interface BenchRecord {
  date: string;
  /** `git rev-parse --short HEAD`, with `-dirty` when the work tree had uncommitted changes; null outside git. */
  commit: string | null;
  quick: boolean;
  /** Set on entries carried over from a file with one shared date: recorded on or before `date`. */
  dateIsUpperBound?: boolean;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The previous results in `file` ({} when there is none). When it is not JSON or not an object it is renamed to
 * `<file>.corrupt-<time>` and `warn` says so; the caller then writes the new results to `file`.
 */
export function readPreviousResults(file: string, warn: (message: string) => void): Record<string, unknown> {
  if (!existsSync(file)) return {};
  let why: string;
  try {
    const parsed: unknown = JSON.parse(readFileSync(file, 'utf8'));
    if (isRecord(parsed)) return parsed;
    why = `its top level is ${Array.isArray(parsed) ? 'an array' : parsed === null ? 'null' : typeof parsed}, not an object`;
  } catch (error) {
    why = String(error);
  }
  const aside = `${file}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  try {
    renameSync(file, aside);
    warn(`metagrad bench: the previous results file ${file} was unreadable (${why}); moved it to ${aside} and wrote this run's results alone`);
  } catch (error) {
    warn(
      `metagrad bench: the previous results file ${file} was unreadable (${why}) and could not be moved aside (${String(error)}); it is replaced by this run's results`,
    );
  }
  return {};
}

/**
 * `previous` with this run's `results` (stamped per bench) on top. Benches recorded under the old single shared
 * `date` get that date as an upper bound; own-key lookups only, so a bench named like an Object method is no entry.
 */
export function mergeBenchResults(
  previous: Record<string, unknown>,
  results: Record<string, unknown>,
  stamp: BenchRecord,
  adapter: unknown,
  benchNames: readonly string[],
): Record<string, unknown> {
  // `date` was once one stamp shared by every bench in the file, overwritten by each run: for the benches recorded
  // then it is only an upper bound. Per-bench `recorded` stamps replace it.
  const { date: legacyDate, ...kept } = previous;
  // Stamps that are not { date: string, … } (a hand edit, an older format) are dropped rather than shown as 'undefined'.
  const recorded: Record<string, unknown> = {};
  if (isRecord(previous.recorded)) {
    for (const [name, r] of Object.entries(previous.recorded)) if (isRecord(r) && typeof r.date === 'string') recorded[name] = r;
  }
  for (const name of benchNames) {
    if (Object.hasOwn(kept, name) && kept[name] !== undefined && !Object.hasOwn(recorded, name) && typeof legacyDate === 'string') {
      recorded[name] = { date: legacyDate, commit: null, quick: false, dateIsUpperBound: true } satisfies BenchRecord;
    }
  }
  for (const name of Object.keys(results)) recorded[name] = stamp;
  return { ...kept, adapter, recorded, ...results };
}
