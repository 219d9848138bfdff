#!/usr/bin/env node
// @file The `metagrad` command (`pnpm metagrad …` in the workspace, `npx metagrad …` where @metagrad/cli is
// installed). Runs the CLI in a child process whose native stderr (fd 2, where dawn.node prints its warnings) goes
// through stderr-filter.mjs, while the CLI's own stderr (progress bars, messages) goes straight to the terminal on
// fd 3, so TTY detection still works. METAGRAD_DAWN_LOG=1 shows Dawn's output unfiltered. Exit status and signals
// are the child's.
// Which CLI: in the workspace (src/ present) src/main.ts under tsx, so edits need no build; in an installed package
// (no src/) the plain-node bundle dist/main.js (`pnpm --filter @metagrad/cli build`). METAGRAD_CLI_DIST=1 forces the
// bundle in the workspace too.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pipeFiltered } from './stderr-filter.mjs';

const source = fileURLToPath(new URL('./src/main.ts', import.meta.url));
const bundle = fileURLToPath(new URL('./dist/main.js', import.meta.url));
const fromSource = existsSync(source) && process.env.METAGRAD_CLI_DIST !== '1';
if (!fromSource && !existsSync(bundle)) {
  process.stderr.write(`metagrad: ${bundle} is missing (build it with: pnpm --filter @metagrad/cli build)\n`);
  process.exit(1);
}
const entry = fromSource ? ['--import', import.meta.resolve('tsx'), source] : [bundle];
const raw = process.env.METAGRAD_DAWN_LOG === '1';
const child = spawn(process.execPath, [...entry, ...process.argv.slice(2)], {
  stdio: ['inherit', 'inherit', raw ? 'inherit' : 'pipe', raw ? 'ignore' : 2],
  env: raw ? process.env : { ...process.env, METAGRAD_CLI_STDERR_FD: '3' },
});
const filtered = raw ? Promise.resolve() : pipeFiltered(child.stderr, process.stderr);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
child.on('error', (e) => {
  process.stderr.write(`metagrad: could not start node: ${e.message}\n`);
  process.exit(1);
});
child.on('close', async (code, signal) => {
  await filtered;
  if (signal) {
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  } else process.exitCode = code ?? 1;
});
