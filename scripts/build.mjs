// @file Builds every workspace package: an esbuild ESM bundle per entry and .d.ts files from tsc, into packages/*/dist.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const packages = readdirSync(join(root, 'packages'));
const entries = { tensor: ['index', 'node'], models: ['index', 'node'] };

for (const name of packages) {
  const dir = join(root, 'packages', name);
  rmSync(join(dir, 'dist'), { recursive: true, force: true });
  for (const entry of entries[name] ?? ['index']) {
    if (!existsSync(join(dir, 'src', `${entry}.ts`))) continue;
    await build({
      entryPoints: [join(dir, 'src', `${entry}.ts`)],
      outfile: join(dir, 'dist', `${entry}.js`),
      bundle: true,
      format: 'esm',
      platform: entry === 'node' ? 'node' : 'neutral',
      target: 'es2022',
      sourcemap: true,
      external: ['@metagrad/*', 'webgpu', 'node:*'],
      logLevel: 'warning',
    });
  }
}

const typesDir = join(root, '.types');
rmSync(typesDir, { recursive: true, force: true });
execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
for (const name of packages) {
  const src = join(typesDir, name, 'src');
  if (existsSync(src)) cpSync(src, join(root, 'packages', name, 'dist'), { recursive: true });
}
rmSync(typesDir, { recursive: true, force: true });
console.log(`built ${packages.length} packages: ${packages.map((p) => '@metagrad/' + p).join(', ')}`);
