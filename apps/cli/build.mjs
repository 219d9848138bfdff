// @file `pnpm --filter @metagrad/cli build` (or `node apps/cli/build.mjs [--outdir dir]`): bundles the CLI
// (src/main.ts) into dist/main.js, one ESM file that plain `node` runs; bin.mjs uses it wherever src/ is absent (an
// installed package). Bundled in: the CLI's sources, @metagrad/experiments (private, not published on its own) and
// the benchmarks in bench/. External (installed beside it): the published @metagrad packages (so one copy of each
// exists at run time), the CLI's npm dependencies (vega, resvg's native binary, webgpu's Dawn …) and tfjs, which
// `metagrad bench` loads only when it is installed.
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const manifest = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8'));

/** Everything the bundle leaves to `node_modules`: the runtime dependencies, and tfjs (optional, bench only). */
export const EXTERNAL = [...Object.keys(manifest.dependencies ?? {}), '@tensorflow/*', 'node:*'];

/** Builds dist/main.js (or `<outdir>/main.js`); returns the output path and its size in bytes. */
export async function buildCli({ outdir = join(here, 'dist'), minify = false } = {}) {
  rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    entryPoints: { main: join(here, 'src', 'main.ts') },
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    minify,
    external: EXTERNAL,
    metafile: true,
    logLevel: 'warning',
    // main.ts reads ../package.json for --version: dist/ sits beside src/, one level under the package root.
  });
  const out = join(outdir, 'main.js');
  const bytes = Object.entries(result.metafile.outputs).find(([file]) => resolve(file) === out)?.[1].bytes ?? 0;
  return { out, bytes };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--outdir');
  const { out, bytes } = await buildCli({ outdir: at > 0 ? resolve(process.argv[at + 1]) : undefined });
  console.log(`built ${out} (${(bytes / 1024).toFixed(0)} KiB)`);
}
