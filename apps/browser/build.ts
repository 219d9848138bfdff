/**
 * @file Builds the browser demos into apps/browser/dist: one esbuild ESM bundle per page straight from the
 * workspace packages' sources, the static HTML/CSS, and the Fashion-MNIST subset asset for the rotation page.
 */
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FASHION_MANIFEST, type FashionManifest, writeFashionAsset } from './fashion-asset';

const here = dirname(fileURLToPath(import.meta.url));
export const PAGES_DIR = join(here, 'pages');
export const DIST_DIR = join(here, 'dist');
/** The pages, in the order the landing page lists them (index is the landing page itself). */
export const PAGES = ['index', 'evograd-toy', 'rotation', 'amaml'] as const;

export interface BuildReport {
  outDir: string;
  ms: number;
  bundles: Record<string, number>;
  /** The Fashion-MNIST manifest, or why the asset could not be built (the rotation page then says so). */
  fashion: FashionManifest | { error: string };
}

/** Builds every page into `outDir` (cleaned first). `minify` for the served demo, off for readable test bundles. */
export async function buildDemos(options: { outDir?: string; minify?: boolean; fashionDir?: string } = {}): Promise<BuildReport> {
  const start = performance.now();
  const outDir = options.outDir ?? DIST_DIR;
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const result = await build({
    entryPoints: Object.fromEntries(PAGES.map((page) => [page, join(PAGES_DIR, `${page}.ts`)])),
    outdir: outDir,
    bundle: true,
    splitting: true, // the engine is shared by every page: one chunk, cached across pages
    format: 'esm',
    platform: 'browser', // any Node-only import (node:fs, the ./node entries) fails the build here
    target: 'es2022',
    sourcemap: true,
    minify: options.minify ?? false,
    metafile: true,
    logLevel: 'warning',
    chunkNames: 'chunks/[name]-[hash]',
  });
  for (const file of readdirSync(PAGES_DIR)) {
    if (file.endsWith('.html') || file.endsWith('.css')) copyFileSync(join(PAGES_DIR, file), join(outDir, file));
  }
  const bundles: Record<string, number> = {};
  for (const [file, info] of Object.entries(result.metafile.outputs)) {
    if (file.endsWith('.js')) bundles[relative(outDir, resolve(file))] = info.bytes;
  }
  let fashion: BuildReport['fashion'];
  try {
    fashion = writeFashionAsset(outDir, options.fashionDir);
  } catch (error) {
    // Keep the other pages usable without the dataset; the rotation page shows this message.
    fashion = { error: error instanceof Error ? error.message : String(error) };
    writeFileSync(join(outDir, FASHION_MANIFEST), JSON.stringify(fashion));
  }
  return { outDir, ms: performance.now() - start, bundles, fashion };
}

/** One line per output for the console. */
export function describeBuild(report: BuildReport): string {
  const kb = (bytes: number): string => `${(bytes / 1024).toFixed(0)} KiB`;
  const lines = Object.entries(report.bundles).map(([file, bytes]) => `  ${file.padEnd(40)} ${kb(bytes)}`);
  const fashion =
    'error' in report.fashion
      ? `  fashion-mnist subset: NOT BUILT (${report.fashion.error})`
      : `  ${report.fashion.file.padEnd(40)} ${kb(report.fashion.bytes)} (Fashion-MNIST ${report.fashion.splits.test[1]} examples)`;
  return [`built ${PAGES.length} pages into ${report.outDir} in ${report.ms.toFixed(0)} ms`, ...lines, fashion].join('\n');
}

// Run directly (`tsx apps/browser/build.ts [--minify]`): build only, no server.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const report = await buildDemos({ minify: process.argv.includes('--minify') });
  console.log(describeBuild(report));
}
