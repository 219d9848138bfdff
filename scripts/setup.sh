#!/usr/bin/env bash
# @file One-shot set-up for a fresh Debian machine with Node 20: pnpm, npm packages, and Debian packages only when missing.
# usage: bash scripts/setup.sh          (what the main job needs)
#        bash scripts/setup.sh --test   (also what the test suite needs: SwiftShader via chromium, headless browser,
#                                        redis-server for the queue tests)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

SUDO=""
[ "$(id -u)" != "0" ] && SUDO="sudo"
apt_updated=0
apt_install() {
  echo "setup: installing Debian packages: $*" >&2
  if [ "$apt_updated" = 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# 1. pnpm (Node 20's corepack fails its signature check on pnpm, so npm installs it).
if ! command -v pnpm >/dev/null 2>&1; then
  echo "setup: installing pnpm" >&2
  npm i -g pnpm@10 >/dev/null 2>&1 || $SUDO npm i -g pnpm@10 >/dev/null
fi

# 2. npm packages, exactly as locked.
pnpm install --frozen-lockfile --reporter=silent

# 3. Debian packages the project reads at run time.
missing=()
have_pkg dataset-fashion-mnist || missing+=(dataset-fashion-mnist)
if [ "$want_test" = 1 ]; then
  # SwiftShader (second adapter, tested) and the headless browser for the browser demos come with chromium;
  # Dawn loads the system Vulkan loader.
  have_pkg chromium || missing+=(chromium)
  have_pkg libvulkan1 || missing+=(libvulkan1)
  # The queue tests (test/cli/queue.test.ts) start their own redis-server on a free 127.0.0.1 port.
  have_pkg redis-server || missing+=(redis-server)
fi
[ ${#missing[@]} -gt 0 ] && apt_install "${missing[@]}"

# 4. A WebGPU adapter: only when none works, install llvmpipe (Mesa GLES; ~10x faster than SwiftShader here).
if ! pnpm -s metagrad doctor --json >/dev/null 2>&1; then
  apt_install libegl-mesa0 libgl1-mesa-dri libvulkan1
  pnpm -s metagrad doctor --json >/dev/null || { echo "setup: still no WebGPU adapter; see 'pnpm metagrad doctor'" >&2; exit 1; }
fi
echo "setup: ready" >&2
