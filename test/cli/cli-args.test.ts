/** @file The CLI as a user runs it: bad arguments exit 2 (usage error) with a clear message; `run --json` prints the experiment's JSON. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'apps/cli/src/main.ts', ...args], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('metagrad CLI arguments', () => {
  it('unknown experiment, bench and command exit 2 and name the choices', () => {
    const run = cli('run', 'no-such-experiment');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/unknown experiment 'no-such-experiment' \(choose e1 evograd-toy, .*e6 adjoint-ode-accuracy/);
    const bench = cli('bench', 'nope');
    expect(bench.code).toBe(2);
    expect(bench.stderr).toMatch(/unknown bench 'nope'/);
    // Names of Object.prototype's members are no bench (`'toString' in BENCHES` was true: a raw TypeError after the device started).
    for (const name of ['toString', '__proto__', 'constructor', 'hasOwnProperty']) {
      const proto = cli('bench', name);
      expect(proto.code, name).toBe(2);
      expect(proto.stderr, name).toMatch(new RegExp(`unknown bench '${name}'`));
      expect(proto.stderr, name).not.toMatch(/TypeError/);
      const exp = cli('run', name);
      expect(exp.code, name).toBe(2);
      expect(exp.stderr, name).toMatch(new RegExp(`unknown experiment '${name}'`));
    }
    const cmd = cli('frobnicate');
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toMatch(/unknown command 'frobnicate'/);
  });

  it('run <experiment> --quick --json prints only the JSON result and writes the run directory', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'metagrad-run-')), 'e6');
    const r = cli('run', 'adjoint-ode-accuracy', '--quick', '--json', '--out', out);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout) as { rows: { method: string; T: number; states: number; relError: number }[] };
    expect(json.rows.length).toBeGreaterThan(0);
    expect(json.rows.every((row) => Number.isFinite(row.relError))).toBe(true);
    expect(existsSync(join(out, 'results.json'))).toBe(true);
    expect(existsSync(join(out, 'figures', 'adjoint-ode-accuracy-error-vs-states.svg'))).toBe(true);
  });
});
