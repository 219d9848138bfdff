#!/usr/bin/env bash
# @file GPU readiness check (issue 15): `metagrad doctor --json`, then `bench kernels|train|compile --json` on a
# hardware adapter, all within 8 minutes, results in $OUT (else bench/results) as <adapter>.json (the usual merged
# bench format, plus `doctor` and `deviceCheck`: per-step status and seconds), <adapter>.md and
# device-check.<adapter>.log (every step's stderr).
#
# usage: bash scripts/device-check.sh                         (hardware adapter, --quick benches)
#        METAGRAD_ADAPTER=llvmpipe OUT=/tmp/dc bash scripts/device-check.sh   (try it on the software adapter)
#        DEVICE_CHECK_FULL=1 bash scripts/device-check.sh     (full-size benches; may not fit the 8 minutes)
# env:   DEVICE_CHECK_BUDGET_S (default 470: the whole run, startup included, stays under 8 minutes)
#
# Needs no network: the npm packages installed by `bash scripts/setup.sh --test` (node_modules) and Node 20. Runs
# tsx from node_modules directly (pnpm 10 may try to fetch the pinned pnpm version before running a script).
# Exit status: 0 when every step passed, 1 when a step failed or timed out (what finished is still written), 2 when
# no adapter could be acquired.
set -uo pipefail
cd "$(dirname "$0")/.."

export METAGRAD_ADAPTER="${METAGRAD_ADAPTER:-hardware}"
budget="${DEVICE_CHECK_BUDGET_S:-470}"
out="${OUT:-bench/results}"
quick=(--quick)
[ "${DEVICE_CHECK_FULL:-0}" = 1 ] && quick=()
mkdir -p "$out"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

if [ -x node_modules/.bin/tsx ]; then
  cli=(node_modules/.bin/tsx apps/cli/src/main.ts)
else
  cli=(pnpm -s metagrad)
fi

start=$SECONDS
statuses=()
failed=0
# step NAME CAP_SECONDS ARGS...: runs the CLI with a timeout of min(CAP, what is left of the budget).
step() {
  local name="$1" cap="$2"
  shift 2
  local left=$((budget - (SECONDS - start)))
  local limit=$((cap < left ? cap : left))
  if [ "$limit" -lt 15 ]; then
    echo "device-check: $name skipped (${left}s of the budget left)" >&2
    statuses+=("$name skipped 0")
    failed=1
    return 1
  fi
  echo "device-check: $name (timeout ${limit}s) ..." >&2
  local t0=$SECONDS rc
  timeout --kill-after=10 "$limit" "${cli[@]}" "$@" >"$scratch/$name.out" 2>"$scratch/$name.err"
  rc=$?
  local took=$((SECONDS - t0)) status=ok
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then status=timeout; elif [ "$rc" != 0 ]; then status="failed(rc=$rc)"; fi
  [ "$status" != ok ] && failed=1
  echo "device-check: $name $status in ${took}s" >&2
  statuses+=("$name $status $took")
  { echo "===== $name: $status in ${took}s: ${cli[*]} $*"; cat "$scratch/$name.err"; } >>"$scratch/log"
  [ "$status" = ok ]
}

if ! step doctor 60 doctor --json; then
  cat "$scratch/doctor.err" >&2
  echo "device-check: no '$METAGRAD_ADAPTER' adapter (see above); nothing benchmarked" >&2
  cp "$scratch/log" "$out/device-check.$METAGRAD_ADAPTER.log"
  exit 2
fi
adapter="$(node -e 'const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); process.stdout.write(d.adapter.name)' "$scratch/doctor.out")"

step kernels 130 bench kernels "${quick[@]}" --json --out "$scratch/bench"
step train 100 bench train "${quick[@]}" --json --out "$scratch/bench"
step compile 260 bench compile "${quick[@]}" --json --out "$scratch/bench"

# One <adapter>.json: the benches' merged file (quick runs are stamped quick: true in `recorded`), merged over any
# earlier file there, with the doctor report and this run's step statuses.
stem="$scratch/bench/$adapter${quick[0]:+.quick}"
node - "$out/$adapter.json" "$stem.json" "$scratch/doctor.out" "$budget" "${statuses[@]}" <<'EOF'
const fs = require('fs');
const [target, benchFile, doctorFile, budget, ...steps] = process.argv.slice(2);
const read = (f) => { try { return JSON.parse(fs.readFileSync(f, 'utf8')); } catch { return {}; } };
const previous = read(target);
const fresh = read(benchFile);
const merged = { ...previous, ...fresh, recorded: { ...(previous.recorded ?? {}), ...(fresh.recorded ?? {}) } };
merged.doctor = read(doctorFile);
merged.deviceCheck = {
  date: new Date().toISOString(),
  budgetSeconds: Number(budget),
  steps: steps.map((s) => { const [name, status, seconds] = s.split(' '); return { name, status, seconds: Number(seconds) }; }),
};
fs.writeFileSync(target, JSON.stringify(merged, null, 2) + '\n');
EOF
[ -f "$stem.md" ] && cp "$stem.md" "$out/$adapter.md"
cp "$scratch/log" "$out/device-check.$adapter.log"
echo "device-check: wrote $out/$adapter.json, $out/$adapter.md, $out/device-check.$adapter.log in $((SECONDS - start))s" >&2
exit "$failed"
