/** @file The README's "Quick start (library)" block is examples/library/quick-start.ts verbatim and runs (λ moves); typedoc config sanity. */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const examplePath = 'examples/library/quick-start.ts';

/** The first ```ts block after the "## Quick start (library)" heading. */
function readmeBlock(): string {
  const readme = readFileSync(`${root}README.md`, 'utf8');
  const start = readme.indexOf('## Quick start (library)');
  expect(start, 'README has a "## Quick start (library)" section').toBeGreaterThanOrEqual(0);
  const match = /```ts\n([\s\S]*?)```/.exec(readme.slice(start));
  expect(match, 'the section has a ```ts block').not.toBeNull();
  return match![1];
}

describe('README quick start (library)', () => {
  it('is the example file, character for character', () => {
    expect(readmeBlock()).toBe(readFileSync(`${root}${examplePath}`, 'utf8'));
  });

  // About 4 s alone on llvmpipe (2 cores); no timing assertion (the project keeps timings in bench/), only a hang guard.
  it('runs as a script and moves log λ away from its start', async () => {
    const stdout = await new Promise<string>((resolve, reject) => {
      // A fresh process, as a reader would run it (`npx tsx examples/library/quick-start.ts`).
      execFile(process.execPath, ['--import', 'tsx', examplePath], { cwd: root, timeout: 60_000 }, (err, out, errOut) => {
        if (err) reject(new Error(`${err.message}\n${errOut}`));
        else resolve(out);
      });
    });
    const m = /log λ: (-?[\d.]+) → (-?[\d.]+), validation MSE ([\d.]+)/.exec(stdout);
    expect(m, `unexpected output: ${stdout}`).not.toBeNull();
    const [start, end, valMse] = m!.slice(1).map(Number);
    expect(Math.abs(end - start)).toBeGreaterThan(0.1);
    expect(Number.isFinite(valMse)).toBe(true);
  }, 90_000);
});

describe('API reference configuration', () => {
  it('documents the five packages and the umbrella from their exported entries and keeps docs/api/ out of git', () => {
    const config = JSON.parse(readFileSync(`${root}typedoc.json`, 'utf8')) as {
      entryPoints: string[];
      out: string;
      packageOptions: { entryPoints: string[] };
    };
    expect([...config.entryPoints].sort()).toEqual([
      'packages/autograd',
      'packages/kernels-wgsl',
      'packages/meta',
      'packages/metagrad',
      'packages/models',
      'packages/tensor',
    ]);
    // index, node and raw entries (package.json exports); test/docs/api-docs-entries.test.ts checks them per package.
    expect(config.packageOptions.entryPoints).toEqual(['src/@(index|node|raw).ts']);
    for (const dir of config.entryPoints) expect(existsSync(`${root}${dir}/src/index.ts`), dir).toBe(true);
    expect(config.out).toBe('docs/api');
    expect(readFileSync(`${root}.gitignore`, 'utf8').split('\n')).toContain('docs/api/');
    const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts['api-docs']).toBe('typedoc');
  });
});
