/** @file The layout's import arrows: packages/ and bench/ never import from apps/ (or examples/); packages import only declared @metagrad dependencies. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { importArrowViolations, specifiers } from './import-arrows';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('import arrows', () => {
  it('the tree has none pointing from packages/ or bench/ up into apps/', () => {
    const violations = importArrowViolations(root).map((v) => `${v.file}: '${v.specifier}' ${v.why}`);
    expect(violations).toEqual([]);
  });

  it('reads every import form and ignores comments', () => {
    const text = [
      "import { a } from './a';",
      "import type { B } from '../b';",
      "export * from './c';",
      "import './side-effect';",
      "const d = await import('./d');",
      "const e = require('e');",
      "// import { x } from '../../apps/commented';",
      "/* import '../../apps/block' */",
      "const url = 'https://example.org'; // a string, not a specifier",
    ].join('\n');
    expect(specifiers(text)).toEqual(['./a', '../b', './c', './side-effect', './d', 'e']);
  });

  describe('on a synthetic tree', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mg-layout-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const file = (path: string, text: string) => {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), text);
    };
    file('apps/cli/package.json', JSON.stringify({ name: '@x/cli' }));
    file('apps/cli/src/stats.ts', 'export const median = 1;');
    file('packages/core/package.json', JSON.stringify({ name: '@metagrad/core' }));
    file('packages/lib/package.json', JSON.stringify({ name: '@metagrad/lib', dependencies: { '@metagrad/core': 'workspace:*' } }));
    file(
      'packages/lib/src/index.ts',
      [
        "import { median } from '../../../apps/cli/src/stats';",
        "import '@x/cli';",
        "import { c } from '@metagrad/core';",
        "import { e } from '@metagrad/elsewhere';",
      ].join('\n'),
    );
    file('bench/b.ts', "import { median } from '../examples/cli/stats';\nimport { c } from '@metagrad/core/node';");

    it('flags each forbidden arrow and nothing else', () => {
      const found = importArrowViolations(dir).map((v) => `${v.file} ${v.specifier}`);
      expect(found.sort()).toEqual(
        [
          'bench/b.ts ../examples/cli/stats',
          'packages/lib/src/index.ts ../../../apps/cli/src/stats',
          'packages/lib/src/index.ts @x/cli',
          'packages/lib/src/index.ts @metagrad/elsewhere',
        ].sort(),
      );
    });
  });
});
