/**
 * @file The API reference (`pnpm api-docs`, typedoc.json) covers what users import: every published package (the
 * umbrella `metagrad` included) and, in each, exactly the source files its package.json `exports` name (`.`,
 * `./node`, `./raw`), no internal module beside them; the generated docs/api/ stays out of git.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
const readJson = <T>(file: string): T => JSON.parse(readFileSync(`${root}${file}`, 'utf8')) as T;

interface PackageJson {
  name: string;
  private?: boolean;
  exports: Record<string, { types: string }>;
}

const config = readJson<{ entryPoints: string[]; entryPointStrategy: string; out: string; packageOptions: { entryPoints: string[] } }>('typedoc.json');
const published = readdirSync(`${root}packages`)
  .filter((d) => existsSync(`${root}packages/${d}/package.json`))
  .map((d) => ({ dir: `packages/${d}`, pkg: readJson<PackageJson>(`packages/${d}/package.json`) }))
  .filter(({ pkg }) => !pkg.private);
// path.matchesGlob: Node ≥ 20.17 (experimental there).
const matchesGlob = (path as { matchesGlob?: (file: string, pattern: string) => boolean }).matchesGlob;

describe('API reference entries', () => {
  it('documents every published package, the umbrella included, and keeps docs/api/ out of git', () => {
    expect(config.entryPointStrategy).toBe('packages');
    expect([...config.entryPoints].sort()).toEqual(published.map((p) => p.dir).sort());
    expect(config.entryPoints).toContain('packages/metagrad');
    expect(config.out).toBe('docs/api');
    expect(readFileSync(`${root}.gitignore`, 'utf8').split('\n')).toContain('docs/api/');
  });

  it.skipIf(!matchesGlob)('each package’s entry points are exactly the source files of its package.json exports (./raw, ./node too)', () => {
    const covered: string[] = [];
    for (const { dir, pkg } of published) {
      const exported = Object.values(pkg.exports)
        .map((e) => path.posix.normalize(e.types))
        .sort();
      const sources = readdirSync(`${root}${dir}/src`).map((f) => `src/${f}`);
      const matched = sources.filter((f) => config.packageOptions.entryPoints.some((g) => matchesGlob?.(f, g))).sort();
      expect(matched, pkg.name).toEqual(exported);
      covered.push(...Object.keys(pkg.exports).map((k) => path.posix.join(pkg.name, k)));
    }
    expect(covered).toEqual(expect.arrayContaining(['metagrad', 'metagrad/node', '@metagrad/tensor/raw', '@metagrad/tensor/node', '@metagrad/models/node']));
  });
});
