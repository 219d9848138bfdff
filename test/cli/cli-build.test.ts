/**
 * @file `apps/cli/build.mjs` makes the installable CLI: one ESM bundle whose bare imports are exactly the CLI's
 * declared dependencies (plus node: builtins and the optional tfjs), with @metagrad/experiments and bench/ bundled
 * in; it answers --version and doctor --json. (Run here under tsx because the workspace's @metagrad packages export
 * TypeScript sources; the plain-node run of the packed tarball is the install smoke's.)
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cliDir = join(root, 'apps', 'cli');
// Inside apps/cli so the bundle's externals resolve from apps/cli/node_modules, as they would from an install.
const pkgDir = join(cliDir, '.cache', `build-test-${process.pid}`);
const manifest = JSON.parse(readFileSync(join(cliDir, 'package.json'), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
  files: string[];
  dependencies: Record<string, string>;
};

let bundle = '';

beforeAll(async () => {
  const { buildCli } = (await import(join(cliDir, 'build.mjs'))) as {
    buildCli(o: { outdir: string }): Promise<{ out: string }>;
  };
  mkdirSync(pkgDir, { recursive: true });
  copyFileSync(join(cliDir, 'package.json'), join(pkgDir, 'package.json'));
  bundle = (await buildCli({ outdir: join(pkgDir, 'dist') })).out;
}, 60_000);
afterAll(() => rmSync(pkgDir, { recursive: true, force: true }));

describe('the CLI bundle (apps/cli/build.mjs)', () => {
  it('imports only declared dependencies, node builtins and the optional tfjs', () => {
    const text = readFileSync(bundle, 'utf8');
    const bare = new Set([...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|\bimport\s+)["']([^"'.][^"']*)["']/g)].map((m) => m[1]));
    const name = (s: string) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]);
    const undeclared = [...bare].filter((s) => !s.startsWith('node:') && !s.startsWith('@tensorflow/') && !(name(s) in manifest.dependencies));
    expect(undeclared).toEqual([]);
    expect([...bare].some((s) => s.startsWith('@metagrad/experiments'))).toBe(false); // bundled in
    expect(text).not.toMatch(/\.\.\/bench\/|\.ts["']/); // bench/ bundled in, no TypeScript import left
  });

  it('is what an installed package runs: bin, stderr filter and dist are its files', () => {
    expect(manifest.bin.metagrad).toBe('./bin.mjs');
    expect([...manifest.files].sort()).toEqual(['bin.mjs', 'dist', 'stderr-filter.mjs']);
  });

  it('answers --version and doctor --json', () => {
    const run = (args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', bundle, ...args], {
        cwd: root,
        encoding: 'utf8',
        timeout: 120_000,
      });
    const version = run(['--version']);
    expect(version.status, version.stderr).toBe(0);
    expect(version.stdout.trim()).toBe(manifest.version);
    const doctor = run(['doctor', '--json']);
    expect(doctor.status, doctor.stderr).toBe(0);
    expect((JSON.parse(doctor.stdout) as { selftest: { ok: boolean } }).selftest.ok).toBe(true);
  });
});
