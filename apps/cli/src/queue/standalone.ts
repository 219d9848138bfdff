/**
 * @file The queue commands without the rest of the CLI (no WebGPU, no experiments loaded): `worker` and
 * `run <exp> --seeds … --redis <url>` only, for the queue's tests and for a coordinator on a machine that merges
 * elsewhere. `node --import tsx apps/cli/src/queue/standalone.ts worker --redis …`. Usage errors exit 2, failures 1.
 */
import { Command } from 'commander';
import { registerQueueCommandsWith } from './register';

const program = new Command().name('metagrad').exitOverride();
program
  .command('run')
  .description('run shards of an experiment on the queue (this entry has no local runs: --redis is required)')
  .argument('<experiment>', 'experiment id')
  .option('--quick', 'the quick variant')
  .option('--json', 'print the run summary as JSON')
  .option('--no-merge', 'collect the per-seed files only')
  .option('--out <dir>', 'output directory')
  .action(() => program.error('error: this entry runs experiments only through the queue: add --redis <url>', { exitCode: 2 }));
// No summary here: the files are collected only (this entry loads no experiments).
registerQueueCommandsWith(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  const err = e as { code?: string; message?: string; name?: string };
  if (err.code?.startsWith('commander.')) process.exitCode = err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2;
  else {
    process.stderr.write(`metagrad: ${err.name ?? 'Error'}: ${err.message ?? String(e)}\n`);
    process.exitCode = 1;
  }
}
