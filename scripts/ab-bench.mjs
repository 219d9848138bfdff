#!/usr/bin/env node
/**
 * @file Side-by-side A/B of two commits: runs `metagrad bench <names> --quick --json` alternately in a worktree of
 * each (interleaved rounds, so load drifts hit both sides alike) and prints the median of every timing per row
 * with the ratio B/A. Usage: node scripts/ab-bench.mjs <revA> [revB=HEAD] [--rounds 4] [--bench meta,dispatch]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const [value] = args.splice(i, 2).slice(1);
  return value;
};
const rounds = Number(flag('--rounds', '4'));
const benches = flag('--bench', 'meta,dispatch').split(',');
const [revA, revB = 'HEAD'] = args;
if (!revA || !Number.isInteger(rounds) || rounds < 1) {
  console.error('usage: node scripts/ab-bench.mjs <revA> [revB=HEAD] [--rounds N] [--bench meta,dispatch]');
  process.exit(2);
}

const root = execFileSync('git', ['rev-parse', '--show-toplevel'], { encoding: 'utf8' }).trim();
const work = mkdtempSync(join(tmpdir(), 'metagrad-ab-'));

/** A detached worktree of `rev` with its packages installed from the local pnpm store. */
function worktree(rev, name) {
  const dir = join(work, name);
  execFileSync('git', ['-C', root, 'worktree', 'add', '-q', '--detach', dir, rev], { stdio: 'inherit' });
  execFileSync('pnpm', ['install', '--offline', '--frozen-lockfile', '--silent'], { cwd: dir, stdio: 'inherit' });
  return dir;
}

function runBench(dir, bench) {
  const out = execFileSync('pnpm', ['-s', 'metagrad', 'bench', bench, '--quick', '--json', '--out', join(dir, '.ab-out')], {
    cwd: dir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    maxBuffer: 64 << 20,
  });
  return JSON.parse(out).rows;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const TIMINGS = ['ms', 'usPerOp'];

const sides = { A: worktree(revA, 'a'), B: worktree(revB, 'b') };
const results = { A: {}, B: {} };
try {
  for (let r = 0; r < rounds; r++) {
    for (const side of ['A', 'B']) {
      for (const bench of benches) (results[side][bench] ??= []).push(runBench(sides[side], bench));
    }
    console.error(`round ${r + 1}/${rounds} done`);
  }
} finally {
  for (const dir of Object.values(sides)) if (existsSync(dir)) execFileSync('git', ['-C', root, 'worktree', 'remove', '--force', dir]);
}

console.log(`A = ${revA}, B = ${revB}; medians of ${rounds} interleaved rounds (--quick)`);
console.log('| bench | row | metric | A | B | B/A |\n|---|---|---|---|---|---|');
for (const bench of benches) {
  const runsA = results.A[bench];
  const runsB = results.B[bench];
  runsA[0].forEach((row, i) => {
    const label = Object.values(row)
      .filter((v) => typeof v === 'string')
      .join(' ');
    for (const metric of TIMINGS.filter((m) => typeof row[m] === 'number')) {
      const a = median(runsA.map((rows) => rows[i][metric]));
      const b = median(runsB.map((rows) => rows[i]?.[metric]).filter((v) => typeof v === 'number'));
      console.log(`| ${bench} | ${label} | ${metric} | ${a.toFixed(2)} | ${b.toFixed(2)} | ${(b / a).toFixed(3)} |`);
    }
  });
}
