/**
 * @file `registerQueueCommands(program)`, what the `metagrad` CLI calls: the queue's commands (./register.ts) with
 * the summary of a distributed run made by `metagrad merge`'s code (../merge.ts) from the collected per-seed files.
 */
import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { mergeSeedFiles } from '../merge';
import { registerQueueCommandsWith, type MergeFn } from './register';

const quiet = new Writable({ write: (_c, _e, cb) => cb() });

/** `metagrad merge`'s code on the files a distributed run collected; the summary table only at the end. */
export const mergeWithReport: MergeFn = async (files, out, final, json) => {
  const loud = final && !json;
  const results = await mergeSeedFiles({
    inputs: files,
    out,
    json: false,
    copy: false,
    label: [out],
    stdout: loud ? process.stdout : quiet,
    stderr: loud ? process.stderr : quiet,
  });
  const failed = results.sections.filter((s) => s.status === 'error');
  if (failed.length) throw new Error(failed.map((s) => `${s.id}: ${s.error}`).join('; '));
  return results.sections.length === 1 ? results.sections[0].json : Object.fromEntries(results.sections.map((s) => [s.id, s.json]));
};

/** Adds `metagrad worker --redis <url>` and `run … --redis <url>` to the CLI (after its `run` and `merge`). */
export function registerQueueCommands(program: Command): void {
  registerQueueCommandsWith(program, { merge: mergeWithReport });
}
