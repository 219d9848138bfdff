#!/usr/bin/env bash
# @file CI proof that the packages install as a user installs them: packs every package and the CLI
# (scripts/pack-all.mjs), npm-installs the tarballs and `webgpu` into a temporary project outside the repository,
# type-checks test/packaging/smoke/smoke.ts (everything imported from the umbrella `metagrad` and `metagrad/node`)
# under moduleResolution NodeNext and Bundler (skipLibCheck off, so the shipped .d.ts are checked too), runs it with
# plain `node`, runs the installed CLI (`npx metagrad --version`, `npx metagrad doctor --json`, which must parse as
# JSON), and checks that a missing `webgpu` gives WebGpuPackageMissingError.
# usage: bash scripts/install-smoke.sh [--keep]   (--keep leaves the temporary project for inspection)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
keep=0
[ "${1:-}" = "--keep" ] && keep=1
start=$(date +%s)
work="$(mktemp -d "${TMPDIR:-/tmp}/metagrad-install-smoke.XXXXXX")"
case "$work" in "$repo"/*) echo "install-smoke: the temporary project must be outside the repository" >&2; exit 1 ;; esac
cleanup() { if [ "$keep" = 1 ]; then echo "install-smoke: kept $work" >&2; else rm -rf "$work"; fi; }
trap cleanup EXIT
step() { echo "install-smoke: $* ($(( $(date +%s) - start )) s)" >&2; }

step "packing"
mapfile -t tarballs < <(node "$repo/scripts/pack-all.mjs" --out "$work/tarballs")
[ "${#tarballs[@]}" -ge 7 ] || { echo "install-smoke: expected 7 tarballs (6 libraries + the CLI), got ${#tarballs[@]}" >&2; exit 1; }
for want in metagrad-0 metagrad-tensor- metagrad-cli-; do
  printf '%s\n' "${tarballs[@]}" | grep -q "/$want" || { echo "install-smoke: no $want*.tgz among the tarballs" >&2; exit 1; }
done

step "npm install of ${#tarballs[@]} tarballs + webgpu into $work/project"
mkdir -p "$work/project"
cd "$work/project"
cat > package.json <<'JSON'
{ "name": "metagrad-install-smoke", "version": "0.0.0", "private": true, "type": "module" }
JSON
# The user's view: only the registry and the tarballs (no workspace, no pnpm). Versions as the repository pins them.
webgpu_version="$(node -p "require('$repo/packages/tensor/package.json').devDependencies.webgpu")"
ts_version="$(node -p "require('$repo/node_modules/typescript/package.json').version")"
npm install --no-audit --no-fund --loglevel=error "${tarballs[@]}" "webgpu@$webgpu_version" \
  "typescript@$ts_version" "@types/node@^20" >/dev/null

# Every module once: no @metagrad package may carry its own copy of another (npm would nest it under node_modules).
nested="$(find node_modules/@metagrad node_modules/metagrad -mindepth 2 -type d -name node_modules | head -5)"
[ -z "$nested" ] || { echo "install-smoke: nested copies of packages: $nested" >&2; exit 1; }

cp "$repo/test/packaging/smoke/smoke.ts" smoke.ts
cat > tsconfig.nodenext.json <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022", "lib": ["ES2023", "DOM"], "module": "NodeNext", "moduleResolution": "NodeNext",
    "strict": true, "skipLibCheck": false, "types": ["node"], "outDir": "out", "rootDir": "."
  },
  "files": ["smoke.ts"]
}
JSON
cat > tsconfig.bundler.json <<'JSON'
{
  "compilerOptions": {
    "target": "ES2022", "lib": ["ES2023", "DOM"], "module": "ESNext", "moduleResolution": "Bundler",
    "strict": true, "skipLibCheck": false, "types": ["node"], "noEmit": true
  },
  "files": ["smoke.ts"]
}
JSON
step "tsc (moduleResolution NodeNext)"
npx tsc -p tsconfig.nodenext.json
step "tsc (moduleResolution Bundler)"
npx tsc -p tsconfig.bundler.json

step "node out/smoke.js"
node out/smoke.js

step "npx metagrad --version"
version="$(npx --no-install metagrad --version)"
want_version="$(node -p "require('$repo/apps/cli/package.json').version")"
[ "$version" = "$want_version" ] || { echo "install-smoke: metagrad --version printed '$version', expected $want_version" >&2; exit 1; }
echo "ok  npx metagrad --version: $version"

step "npx metagrad doctor --json"
npx --no-install metagrad doctor --json > doctor.json
node -e "
const text = require('fs').readFileSync('doctor.json', 'utf8');
let parsed;
try { parsed = JSON.parse(text); } catch (e) { console.error('install-smoke: doctor --json is not JSON: ' + e.message + '\\n' + text.slice(0, 400)); process.exit(1); }
console.log('ok  npx metagrad doctor --json parses as JSON (' + Object.keys(parsed).join(', ') + ')');"

step "without webgpu"
mv node_modules/webgpu node_modules/webgpu.off
node --input-type=module -e "
import { NoAdapterError } from 'metagrad';
import { createNodeDevice } from 'metagrad/node';
try {
  await createNodeDevice();
  console.error('install-smoke: createNodeDevice() worked without webgpu'); process.exit(1);
} catch (e) {
  if (e.name !== 'WebGpuPackageMissingError' || !(e instanceof NoAdapterError) || !/npm install webgpu/.test(e.message)) {
    console.error('install-smoke: wrong error without webgpu:', e); process.exit(1);
  }
  console.log('ok  without webgpu: ' + e.name + ': ' + e.message.split('. ')[0]);
}"
mv node_modules/webgpu.off node_modules/webgpu
step "passed"
