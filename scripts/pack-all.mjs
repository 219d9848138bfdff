// @file `pnpm pack:all [--out dir] [--no-build]`: builds every package (scripts/build.mjs) and writes one npm tarball
// per package into a scratch directory (default dist/pack, git-ignored). Each tarball's package.json is the
// publishable one: `exports` from publishConfig (dist/, ESM + .d.ts), `workspace:` ranges replaced by the real
// versions, no devDependencies; LICENSE and CHANGELOG.md from the repository root, a short README if the package has
// none. Prints the tarball paths, one a line, on stdout.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAll } from './build.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Every workspace package: directory name → its package.json. */
export function workspacePackages() {
  const out = {};
  for (const dir of readdirSync(join(root, 'packages'))) {
    const file = join(root, 'packages', dir, 'package.json');
    if (existsSync(file)) out[dir] = JSON.parse(readFileSync(file, 'utf8'));
  }
  return out;
}

/**
 * The package.json a tarball carries: publishConfig applied, `workspace:*|^|~` ranges replaced by the real version
 * (`*` → exact, `^`/`~` → that prefix), devDependencies and scripts dropped, main/types for old resolvers.
 */
export function publishManifest(manifest, versions) {
  const { publishConfig = {}, devDependencies: _dev, scripts: _scripts, ...rest } = manifest;
  const out = { ...rest, ...publishConfig };
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    if (!out[field]) continue;
    out[field] = Object.fromEntries(
      Object.entries(out[field]).map(([name, range]) => {
        if (!range.startsWith('workspace:')) return [name, range];
        const version = versions[name];
        if (!version) throw new Error(`pack: ${manifest.name} depends on ${name}@${range}, which is no workspace package`);
        const spec = range.slice('workspace:'.length);
        return [name, spec === '*' || spec === '' ? version : spec === '^' || spec === '~' ? spec + version : spec];
      }),
    );
  }
  const main = out.exports?.['.'];
  if (main && typeof main === 'object') {
    out.main = main.default;
    out.types = main.types;
  }
  return out;
}

function readme(manifest) {
  return [
    `# ${manifest.name}`,
    '',
    manifest.description ?? '',
    '',
    'Part of metagrad, a WebGPU autodiff engine for gradient-based meta-learning (browser and Node).',
    '',
    '```sh',
    'npm install @metagrad/tensor @metagrad/autograd @metagrad/models @metagrad/meta webgpu',
    '```',
    '',
    '`webgpu` (Dawn for Node) is only needed by the `/node` entries (`createNodeDevice`); browsers use `navigator.gpu`.',
    '',
    `License: ${manifest.license}.`,
    '',
  ].join('\n');
}

/** Packs every package into `out` (created, emptied); returns the tarball paths. */
export async function packAll({ out = join(root, 'dist', 'pack'), build = true, quiet = false } = {}) {
  const built = build ? await buildAll({ quiet: true }) : null;
  const packages = workspacePackages();
  // A .d.ts that names GPU types needs @webgpu/types installed beside it (its `/// <reference types>`).
  for (const dir of built?.gpuTypes ?? []) {
    if (!packages[dir].dependencies?.['@webgpu/types']) {
      throw new Error(`pack: the .d.ts of ${packages[dir].name} use WebGPU types: add @webgpu/types to its dependencies`);
    }
  }
  const versions = Object.fromEntries(Object.values(packages).map((m) => [m.name, m.version]));
  rmSync(out, { recursive: true, force: true });
  const stage = join(out, 'stage');
  mkdirSync(stage, { recursive: true });
  const tarballs = [];
  for (const [dir, manifest] of Object.entries(packages)) {
    const src = join(root, 'packages', dir);
    if (!existsSync(join(src, 'dist'))) throw new Error(`pack: packages/${dir}/dist is missing (run pnpm build)`);
    const pkgStage = join(stage, dir);
    mkdirSync(pkgStage, { recursive: true });
    cpSync(join(src, 'dist'), join(pkgStage, 'dist'), { recursive: true });
    const publish = publishManifest(manifest, versions);
    writeFileSync(join(pkgStage, 'package.json'), JSON.stringify(publish, null, 2) + '\n');
    cpSync(join(root, 'LICENSE'), join(pkgStage, 'LICENSE'));
    cpSync(join(root, 'CHANGELOG.md'), join(pkgStage, 'CHANGELOG.md'));
    if (existsSync(join(src, 'README.md'))) cpSync(join(src, 'README.md'), join(pkgStage, 'README.md'));
    else writeFileSync(join(pkgStage, 'README.md'), readme(publish));
    const result = execFileSync('npm', ['pack', pkgStage, '--pack-destination', out, '--json', '--ignore-scripts'], {
      cwd: out,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [info] = JSON.parse(result);
    tarballs.push(join(out, info.filename));
    if (!quiet) process.stderr.write(`pack: ${info.filename} (${info.entryCount} files, ${(info.size / 1024).toFixed(0)} KiB)\n`);
  }
  rmSync(stage, { recursive: true, force: true });
  return tarballs;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const outAt = args.indexOf('--out');
  if (outAt >= 0 && !args[outAt + 1]) {
    process.stderr.write('usage: node scripts/pack-all.mjs [--out dir] [--no-build]\n');
    process.exit(2);
  }
  const tarballs = await packAll({ out: outAt >= 0 ? resolve(args[outAt + 1]) : undefined, build: !args.includes('--no-build') });
  process.stdout.write(tarballs.join('\n') + '\n');
}
