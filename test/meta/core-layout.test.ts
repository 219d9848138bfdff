/** @file packages/meta's episodic layout: core/ imports none of episodic/, hyperdistill/, implicit/; those meet only through core/; no file over 200 lines. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { specifiers } from '../layout/import-arrows';

const src = fileURLToPath(new URL('../../packages/meta/src/', import.meta.url));
const FOLDERS = ['core', 'episodic', 'hyperdistill', 'implicit'] as const;

/** Every .ts file of a folder with the folders of packages/meta/src its relative imports reach. */
function files(folder: string): { file: string; text: string; reaches: string[] }[] {
  return readdirSync(join(src, folder))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => {
      const text = readFileSync(join(src, folder, f), 'utf8');
      const reaches = specifiers(text)
        .filter((s) => s.startsWith('../'))
        .map((s) => s.slice(3).split('/')[0]);
      return { file: `${folder}/${f}`, text, reaches };
    });
}

describe('the shared episodic core', () => {
  it('core/ imports none of the folders built on it, and those import each other only through core/', () => {
    const arrows = FOLDERS.flatMap((folder) =>
      files(folder).flatMap(({ file, reaches }) =>
        reaches.filter((r) => (FOLDERS as readonly string[]).includes(r) && r !== 'core').map((r) => `${file} → ${r}/`),
      ),
    );
    expect(arrows).toEqual([]);
    expect(files('core').length).toBeGreaterThan(0);
    for (const folder of ['episodic', 'hyperdistill', 'implicit'])
      expect(
        files(folder).some((f) => f.reaches.includes('core')),
        folder,
      ).toBe(true);
  });

  it('no file over 200 lines, each with a one-line @file header', () => {
    for (const folder of FOLDERS) {
      for (const { file, text } of files(folder)) {
        expect(text.split('\n').length, file).toBeLessThanOrEqual(201);
        expect(text.split('\n')[0], file).toMatch(/^\/\*\* @file .+\*\/$/);
      }
    }
  });
});
