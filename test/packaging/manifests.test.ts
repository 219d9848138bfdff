/**
 * @file The publishable package.json of every package (what `pnpm pack:all` writes into each tarball), checked
 * without building or installing: no `workspace:` ranges, `exports` into dist/ for exactly the entries the build
 * bundles, licence and metadata, `webgpu` an optional peer only; plus the two build steps that made the installed
 * packages break (a second copy of tensor's modules in dist/node.js, extensionless .d.ts specifiers).
 * The full install is scripts/install-smoke.sh (CI).
 */
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM script without declarations
import { ENTRIES, bundlePackage, rewriteSpecifiers } from '../../scripts/build.mjs';
// @ts-expect-error plain ESM script without declarations
import { cliManifest, publishManifest, workspacePackages } from '../../scripts/pack-all.mjs';

type Manifest = Record<string, any>;
const root = join(__dirname, '..', '..');
const packages = workspacePackages() as Record<string, Manifest>;
const versions = Object.fromEntries(Object.values(packages).map((m) => [m.name, m.version]));
const scratch = mkdtempSync(join(tmpdir(), 'metagrad-manifests-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('publishable package.json files', () => {
  it('covers the six library packages (the umbrella among them; private ones left out)', () => {
    expect(Object.keys(packages).sort()).toEqual(['autograd', 'kernels-wgsl', 'meta', 'metagrad', 'models', 'tensor']);
  });

  for (const [dir, manifest] of Object.entries(packages)) {
    it(`@metagrad/${dir}: real versions, exports into dist for each built entry, licence and metadata`, () => {
      const out = publishManifest(manifest, versions) as Manifest;
      expect(JSON.stringify(out)).not.toMatch(/workspace:/);
      for (const [name, range] of Object.entries({ ...out.dependencies, ...out.peerDependencies } as Record<string, string>)) {
        if (name.startsWith('@metagrad/')) expect(range, name).toBe(versions[name]);
      }
      expect(out.publishConfig).toBeUndefined();
      expect(out.devDependencies).toBeUndefined();
      const entries: string[] = ENTRIES[dir] ?? ['index'];
      expect(Object.keys(out.exports).sort()).toEqual(entries.map((e) => (e === 'index' ? '.' : `./${e}`)).sort());
      for (const entry of entries) {
        const target = out.exports[entry === 'index' ? '.' : `./${entry}`];
        expect(target).toEqual({ types: `./dist/${entry}.d.ts`, default: `./dist/${entry}.js` });
        expect(existsSync(join(root, 'packages', dir, 'src', `${entry}.ts`)), `src/${entry}.ts`).toBe(true);
      }
      // The dev manifest keeps exports into src (tests and the workspace run on the sources).
      expect(manifest.exports['.'].default).toBe('./src/index.ts');
      expect(out.main).toBe('./dist/index.js');
      expect(out.types).toBe('./dist/index.d.ts');
      expect(out.license).toBe('MIT');
      expect(out.description.length).toBeGreaterThan(20);
      expect(out.repository).toMatchObject({ type: 'git', directory: `packages/${dir}` });
      expect(out.keywords).toContain('webgpu');
      expect(out.files).toEqual(expect.arrayContaining(['dist', 'LICENSE']));
      expect(out.type).toBe('module');
      // Only the Node helper needs Dawn: never a hard dependency.
      expect(out.dependencies?.webgpu).toBeUndefined();
    });
  }

  it('@metagrad/tensor: @webgpu/types a dependency, webgpu an optional peer', () => {
    const out = publishManifest(packages.tensor, versions) as Manifest;
    expect(out.dependencies['@webgpu/types']).toMatch(/^\^0\.1\./);
    expect(out.peerDependencies.webgpu).toMatch(/^\^0\.6\./);
    expect(out.peerDependenciesMeta.webgpu.optional).toBe(true);
  });

  it('metagrad (the umbrella): the four user-facing packages at their exact versions, ./node beside ., webgpu an optional peer', () => {
    const out = publishManifest(packages.metagrad, versions) as Manifest;
    expect(out.name).toBe('metagrad');
    expect(out.dependencies).toEqual(
      Object.fromEntries(['@metagrad/autograd', '@metagrad/meta', '@metagrad/models', '@metagrad/tensor'].map((n) => [n, versions[n]])),
    );
    expect(Object.keys(out.exports)).toEqual(['.', './node']);
    expect(out.peerDependencies.webgpu).toMatch(/^\^0\.6\./);
    expect(out.peerDependenciesMeta.webgpu.optional).toBe(true);
  });

  it('@metagrad/tensor publishes ./raw beside . and ./node', () => {
    expect(Object.keys(publishManifest(packages.tensor, versions).exports)).toEqual(['.', './node', './raw']);
  });

  it('@metagrad/cli: bin metagrad, the libraries at their exact versions, no workspace ranges or dev tooling', () => {
    const cli = cliManifest() as Manifest | null;
    expect(cli, 'apps/cli/package.json').not.toBeNull();
    const out = publishManifest(cli, versions) as Manifest;
    expect(out.bin).toEqual({ metagrad: './bin.mjs' });
    expect(JSON.stringify(out)).not.toMatch(/workspace:/);
    expect(out.devDependencies).toBeUndefined();
    expect(out.scripts).toBeUndefined();
    for (const [name, range] of Object.entries(out.dependencies as Record<string, string>)) {
      if (name.startsWith('@metagrad/')) expect(range, name).toBe(versions[name]);
    }
    expect(out.files).toEqual(expect.arrayContaining(['bin.mjs', 'dist']));
  });

  it('workspace:^ and workspace:~ keep their prefix; an unknown workspace package is an error', () => {
    const m = { name: 'x', version: '1.0.0', dependencies: { a: 'workspace:^', b: 'workspace:~', c: '^2.0.0' } };
    expect(publishManifest(m, { a: '0.3.0', b: '0.4.0' }).dependencies).toEqual({
      a: '^0.3.0',
      b: '~0.4.0',
      c: '^2.0.0',
    });
    expect(() => publishManifest({ ...m, dependencies: { z: 'workspace:*' } }, {})).toThrow(/z@workspace:\*/);
  });

  it('LICENSE (MIT), CHANGELOG.md and CITATION.cff naming the three papers are in the repository', () => {
    expect(readFileSync(join(root, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
    expect(readFileSync(join(root, 'CHANGELOG.md'), 'utf8')).toMatch(/## \[0\.1\.0\]/);
    const cff = readFileSync(join(root, 'CITATION.cff'), 'utf8');
    expect(cff).toMatch(/cff-version: 1\.2\.0/);
    for (const title of [
      'EvoGrad: Efficient Gradient-Based Meta-Learning and Hyperparameter Optimization',
      'Online Hyperparameter Meta-Learning with Hypergradient Distillation',
      'Meta-Learning with Adjoint Methods',
    ])
      expect(cff).toContain(`title: "${title}"`);
  });
});

describe('build output', () => {
  it("@metagrad/tensor's two entries share one copy of the device, runtime, errors and autotune modules", async () => {
    const out = join(scratch, 'tensor');
    await bundlePackage('tensor', out);
    const files = (function list(d: string): string[] {
      return readdirSync(d, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? list(join(d, e.name)) : e.name.endsWith('.js') ? [join(d, e.name)] : [],
      );
    })(out);
    const all = files.map((f) => readFileSync(f, 'utf8')).join('\n');
    // Each declaration of device.ts, runtime.ts (the default device), errors.ts and autotune.ts exactly once.
    for (const decl of [
      /\bvar Device = class\b/g,
      /\bvar NoAdapterError = class\b/g,
      /\bfunction setDefaultDevice\b/g,
      /\bvar defaultDevice\b|\blet defaultDevice\b/g,
      /\bfunction setTuningStore\b/g,
    ]) {
      expect(all.match(decl), String(decl)).toHaveLength(1);
    }
    // The browser entry pulls in nothing Node-only.
    const index = readFileSync(join(out, 'index.js'), 'utf8');
    expect(index).not.toMatch(/from ["']node:|["']webgpu["']/);
  });

  it('.d.ts specifiers get explicit .js (files and directory indexes); existing extensions stay', () => {
    const d = join(scratch, 'dts');
    mkdirSync(join(d, 'ops'), { recursive: true });
    writeFileSync(join(d, 'a.d.ts'), '');
    writeFileSync(join(d, 'ops', 'index.d.ts'), '');
    const file = join(d, 'index.d.ts');
    const text = [
      "export * from './a';",
      "export { x } from './ops';",
      "import type { Y } from './a.js';",
      "export type Z = import('./ops').Z;",
      "import './a';",
      "export * from '@metagrad/tensor';",
    ].join('\n');
    expect(rewriteSpecifiers(text, file)).toBe(
      [
        "export * from './a.js';",
        "export { x } from './ops/index.js';",
        "import type { Y } from './a.js';",
        "export type Z = import('./ops/index.js').Z;",
        "import './a.js';",
        "export * from '@metagrad/tensor';",
      ].join('\n'),
    );
    expect(() => rewriteSpecifiers("export * from './missing';", file)).toThrow(/cannot resolve '.\/missing'/);
  });
});
