// @file `pnpm pack:all [--out dir] [--no-build]`: builds every publishable package (scripts/build.mjs: the libraries
// under packages/ that are not private, the umbrella `metagrad` among them) and the CLI (apps/cli/build.mjs), and
// writes one npm tarball per package into a scratch directory (default dist/pack, git-ignored). Each tarball's
// package.json is the publishable one: `exports` from publishConfig (dist/, ESM + .d.ts), `workspace:` ranges
// replaced by the real versions, no devDependencies or scripts; LICENSE and CHANGELOG.md from the repository root, a
// short README if the package has none. Prints the tarball paths, one a line, on stdout.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildAll, publishablePackages } from './build.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The command-line package: apps/cli (bin `metagrad`), bundled by its own build.mjs. */
export const CLI_DIR = join(root, 'apps', 'cli');

/** Every publishable library package under packages/: directory name → its package.json. */
export function workspacePackages() {
  const out = {};
  for (const dir of publishablePackages()) out[dir] = JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8'));
  return out;
}

/** The CLI's package.json, or null where apps/cli does not exist. */
export function cliManifest() {
  const file = join(CLI_DIR, 'package.json');
  return existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : null;
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
  const lines = [`# ${manifest.name}`, '', manifest.description ?? '', ''];
  lines.push('Part of metagrad, a WebGPU autodiff engine for gradient-based meta-learning (browser and Node).', '');
  if (manifest.bin) {
    lines.push('```sh', `npm install ${manifest.name}`, 'npx metagrad doctor', '```', '');
  } else {
    lines.push('```sh', 'npm install metagrad webgpu', '```', '');
    lines.push("`import { tensor, grad, mlp } from 'metagrad'` gathers the packages; `metagrad/node` has the Node device helper.");
    lines.push('`webgpu` (Dawn for Node) is only needed by the `/node` entries (`createNodeDevice`); browsers use `navigator.gpu`.', '');
  }
  lines.push(`License: ${manifest.license}.`, '');
  return lines.join('\n');
}

/** Writes one package's staged directory into a tarball in `out`; returns the tarball path. */
function packStaged(pkgStage, out, quiet) {
  const result = execFileSync('npm', ['pack', pkgStage, '--pack-destination', out, '--json', '--ignore-scripts'], {
    cwd: out,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [info] = JSON.parse(result);
  if (!quiet) process.stderr.write(`pack: ${info.filename} (${info.entryCount} files, ${(info.size / 1024).toFixed(0)} KiB)\n`);
  return join(out, info.filename);
}

/** Stages a package: its `files` entries (or just dist/), the publishable package.json, LICENSE, CHANGELOG, README. */
function stage(src, pkgStage, manifest, versions, files) {
  mkdirSync(pkgStage, { recursive: true });
  for (const f of files) {
    if (!existsSync(join(src, f))) throw new Error(`pack: ${join(src, f)} is missing (run the build)`);
    cpSync(join(src, f), join(pkgStage, f), { recursive: true });
  }
  const publish = publishManifest(manifest, versions);
  // npm packs only what `files` lists (README and LICENSE aside): every tarball carries the changelog too.
  if (publish.files) publish.files = [...new Set([...publish.files, 'LICENSE', 'README.md', 'CHANGELOG.md'])];
  writeFileSync(join(pkgStage, 'package.json'), `${JSON.stringify(publish, null, 2)}\n`);
  cpSync(join(root, 'LICENSE'), join(pkgStage, 'LICENSE'));
  cpSync(join(root, 'CHANGELOG.md'), join(pkgStage, 'CHANGELOG.md'));
  if (existsSync(join(src, 'README.md'))) cpSync(join(src, 'README.md'), join(pkgStage, 'README.md'));
  else writeFileSync(join(pkgStage, 'README.md'), readme(publish));
}

/** Packs every package (and the CLI unless `cli: false`) into `out` (created, emptied); returns the tarball paths. */
export async function packAll({ out = join(root, 'dist', 'pack'), build = true, quiet = false, cli = true } = {}) {
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
  const stageDir = join(out, 'stage');
  mkdirSync(stageDir, { recursive: true });
  const tarballs = [];
  for (const [dir, manifest] of Object.entries(packages)) {
    const src = join(root, 'packages', dir);
    if (!existsSync(join(src, 'dist'))) throw new Error(`pack: packages/${dir}/dist is missing (run pnpm build)`);
    stage(src, join(stageDir, dir), manifest, versions, ['dist']);
    tarballs.push(packStaged(join(stageDir, dir), out, quiet));
  }
  const cliPkg = cli ? cliManifest() : null;
  if (cliPkg) {
    // The CLI bundles its sources, @metagrad/experiments and bench/ into dist/main.js; the libraries stay external.
    if (build) {
      const { buildCli } = await import(pathToFileURL(join(CLI_DIR, 'build.mjs')).href);
      await buildCli();
    }
    stage(CLI_DIR, join(stageDir, 'cli'), cliPkg, versions, cliPkg.files ?? ['dist']);
    tarballs.push(packStaged(join(stageDir, 'cli'), out, quiet));
  }
  rmSync(stageDir, { recursive: true, force: true });
  return tarballs;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const outAt = args.indexOf('--out');
  if (outAt >= 0 && !args[outAt + 1]) {
    process.stderr.write('usage: node scripts/pack-all.mjs [--out dir] [--no-build] [--no-cli]\n');
    process.exit(2);
  }
  const tarballs = await packAll({
    out: outAt >= 0 ? resolve(args[outAt + 1]) : undefined,
    build: !args.includes('--no-build'),
    cli: !args.includes('--no-cli'),
  });
  process.stdout.write(`${tarballs.join('\n')}\n`);
}
