// @file Builds every workspace package into packages/*/dist: one esbuild ESM build per package (all its entries
// together, shared modules split into dist/chunks/ so each module exists once at run time, other @metagrad packages
// external) and .d.ts files from tsc, rewritten to explicit `.js` specifiers so NodeNext and Bundler both resolve them.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The publishable packages under packages/ (those not marked `private`: @metagrad/experiments is bundled into the CLI). */
export function publishablePackages() {
  return readdirSync(join(root, 'packages')).filter((p) => {
    const file = join(root, 'packages', p, 'package.json');
    return existsSync(file) && !JSON.parse(readFileSync(file, 'utf8')).private;
  });
}

/**
 * A package's entries, from its publishConfig exports ('.' → index, './node' → node): `./node` is the Node-only
 * helper (it alone may import node:* and webgpu), tensor's `./raw` holds the non-recording ops.
 */
export function entriesOf(name) {
  const manifest = JSON.parse(readFileSync(join(root, 'packages', name, 'package.json'), 'utf8'));
  const exports = manifest.publishConfig?.exports ?? { '.': null };
  return Object.keys(exports).map((k) => (k === '.' ? 'index' : k.replace(/^\.\//, '')));
}

/** Every publishable package's entries (see entriesOf). */
export const ENTRIES = Object.fromEntries(publishablePackages().map((p) => [p, entriesOf(p)]));

/** Matches the module specifier of `from '…'`, `import('…')` and `import '…'` in a .d.ts. */
const SPECIFIER = /(\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]*|\.{1,2})\2/g;

/** `./x` → `./x.js` or `./x/index.js`, whichever .d.ts exists beside `file`; specifiers with an extension stay. */
export function rewriteSpecifiers(text, file) {
  return text.replace(SPECIFIER, (whole, head, quote, spec) => {
    if (/\.(js|mjs|cjs|json)$/.test(spec)) return whole;
    const base = join(dirname(file), spec);
    let target;
    if (existsSync(`${base}.d.ts`)) target = `${spec}.js`;
    else if (existsSync(join(base, 'index.d.ts'))) target = `${spec.replace(/\/$/, '')}/index.js`;
    else throw new Error(`build: cannot resolve '${spec}' in ${relative(root, file)}`);
    return `${head}${quote}${target}${quote}`;
  });
}

/** WebGPU's global types (GPUDevice, GPUBuffer, navigator.gpu …) as they appear in a declaration file. */
const USES_GPU_TYPES = /\bGPU[A-Z]?\w*\b/;

function* walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* walk(path);
    else yield path;
  }
}

/** Rewrites every .d.ts under `dir`: explicit `.js` specifiers, and a reference to @webgpu/types where GPU types are used. */
function fixDeclarations(dir) {
  let gpu = false;
  for (const file of walk(dir)) {
    if (!file.endsWith('.d.ts')) continue;
    let text = rewriteSpecifiers(readFileSync(file, 'utf8'), file);
    if (USES_GPU_TYPES.test(text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, ''))) {
      gpu = true;
      text = `/// <reference types="@webgpu/types" />\n${text}`;
    }
    writeFileSync(file, text);
  }
  return gpu;
}

/** The esbuild bundles of one package (all its entries, shared modules split into chunks/) into `outdir`. */
export async function bundlePackage(name, outdir = join(root, 'packages', name, 'dist')) {
  const dir = join(root, 'packages', name);
  const entries = entriesOf(name).filter((e) => existsSync(join(dir, 'src', `${e}.ts`)));
  await build({
    entryPoints: Object.fromEntries(entries.map((e) => [e, join(dir, 'src', `${e}.ts`)])),
    outdir,
    // One build for all entries with splitting: modules both entries use (tensor's device, runtime, errors,
    // autotune) land in one shared chunk instead of a copy per entry.
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    sourcemap: true,
    external: ['@metagrad/*', 'webgpu', 'node:*'],
    logLevel: 'warning',
  });
  return entries;
}

export async function buildAll({ quiet = false } = {}) {
  const packages = publishablePackages();
  for (const name of packages) {
    rmSync(join(root, 'packages', name, 'dist'), { recursive: true, force: true });
    await bundlePackage(name);
  }

  const typesDir = join(root, '.types');
  rmSync(typesDir, { recursive: true, force: true });
  // Declarations of the publishable packages only (tsconfig.build.json with its include narrowed): a private
  // package (@metagrad/experiments, bundled into the CLI) is neither shipped nor allowed to break the build.
  mkdirSync(typesDir, { recursive: true });
  const config = join(typesDir, 'tsconfig.json');
  writeFileSync(
    config,
    JSON.stringify({
      extends: '../tsconfig.build.json',
      compilerOptions: { rootDir: '../packages', outDir: '.' },
      include: packages.map((p) => `../packages/${p}/src`),
      exclude: ['../packages/*/src/**/*.test.ts'],
    }),
  );
  execFileSync('npx', ['tsc', '-p', config], { cwd: root, stdio: 'inherit' });
  const gpuTypes = [];
  for (const name of packages) {
    const src = join(typesDir, name, 'src');
    if (!existsSync(src)) continue;
    const dist = join(root, 'packages', name, 'dist');
    cpSync(src, dist, { recursive: true });
    if (fixDeclarations(dist)) gpuTypes.push(name);
  }
  rmSync(typesDir, { recursive: true, force: true });
  if (!quiet) {
    console.log(`built ${packages.length} packages: ${packages.join(', ')}`);
  }
  return { packages, gpuTypes };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await buildAll();
