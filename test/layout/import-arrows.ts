/**
 * @file The import graph of the tree, read from the sources (no TypeScript needed): every static `import … from`,
 * `export … from`, side-effect `import '…'`, dynamic `import('…')` and `require('…')` with a literal specifier.
 * `importArrowViolations` lists the arrows the layout forbids (docs/ARCHITECTURE.md, "Layers"):
 * - nothing in packages/ or bench/ imports from apps/ or examples/ (by path or by an app's package name);
 * - a package imports another @metagrad package only if its package.json declares it (so the declared
 *   dependency graph, which pnpm and the tarballs follow, is the real one).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const SOURCE = /\.(ts|mts|cts|js|mjs|cjs)$/;
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)(['"])([^'"\n]+)\1/g;

/** Module specifiers of one source text, comments removed first (so prose like `import 'x'` in a comment is ignored). */
export function specifiers(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  return [...code.matchAll(SPECIFIER)].map((m) => m[2]);
}

function* sources(dir: string): Generator<string> {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* sources(path);
    else if (SOURCE.test(name)) yield path;
  }
}

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

function manifests(root: string, area: string): { dir: string; manifest: Manifest }[] {
  const base = join(root, area);
  if (!existsSync(base)) return [];
  return readdirSync(base)
    .filter((d) => existsSync(join(base, d, 'package.json')))
    .map((d) => ({
      dir: join(base, d),
      manifest: JSON.parse(readFileSync(join(base, d, 'package.json'), 'utf8')) as Manifest,
    }));
}

/** `@metagrad/x/node` → `@metagrad/x`; `vega` → `vega`. */
function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

export interface Violation {
  /** Importing file, relative to the root. */
  file: string;
  specifier: string;
  why: string;
}

export function importArrowViolations(root: string): Violation[] {
  const out: Violation[] = [];
  const apps = manifests(root, 'apps');
  const appNames = new Set(apps.map((a) => a.manifest.name));
  const forbidden = [join(root, 'apps'), join(root, 'examples')];
  const inside = (path: string, dir: string): boolean => path === dir || path.startsWith(dir + sep);
  const check = (file: string, allowed: Set<string> | null) => {
    for (const spec of specifiers(readFileSync(file, 'utf8'))) {
      const rel = relative(root, file);
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec);
        const area = forbidden.find((dir) => inside(target, dir));
        if (area)
          out.push({
            file: rel,
            specifier: spec,
            why: `imports from ${relative(root, area)}/ (applications sit above packages and bench)`,
          });
        continue;
      }
      const name = packageName(spec);
      if (appNames.has(name)) out.push({ file: rel, specifier: spec, why: `imports the application package ${name}` });
      else if (allowed && name.startsWith('@metagrad/') && !allowed.has(name)) {
        out.push({ file: rel, specifier: spec, why: `${name} is not among its package's dependencies` });
      }
    }
  };
  for (const { dir, manifest } of manifests(root, 'packages')) {
    const allowed = new Set([manifest.name, ...Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies })]);
    for (const file of sources(join(dir, 'src'))) check(file, allowed);
  }
  for (const file of sources(join(root, 'bench'))) check(file, null);
  return out;
}
