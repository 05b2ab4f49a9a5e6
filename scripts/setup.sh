#!/usr/bin/env bash
# Installs everything the build, the demo and the tests need, from the package registries only. Idempotent: each step
# is skipped when what it installs is already there (so a second run takes seconds).
# `--no-browser` skips Chromium (the demo needs none).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== setup: %s\n' "$*"; }
browser=1
[ "${1:-}" = "--no-browser" ] && browser=0

step "Rust wasm32 target"
rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

# The CLI and test runner must equal the wasm-bindgen crate version exactly (TOOLCHAIN.md pitfall 1).
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
step "wasm-bindgen-cli $want (found: ${have:-none})"
if [ "$have" != "$want" ]; then
  # Without --locked: its lockfile pins a crate the registry mirror lacks (TOOLCHAIN.md).
  cargo install wasm-bindgen-cli --version "=$want"
fi

step "Debian chromium + chromium-driver"
if [ "$browser" = 1 ] && { [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; }; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  # One run was seen to fail mid-unpack and leave no chromedriver; the same command again fixed it.
  $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver \
    || $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver
fi

# The SQL store tests start throwaway PostgreSQL servers (tests/db/postgres.mjs: initdb + pg_ctl, as the postgres user
# when run as root). Debian's package puts the binaries in /usr/lib/postgresql/<version>/bin, where the tests look too.
step "PostgreSQL server binaries (initdb, pg_ctl)"
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends postgresql
fi

# better-sqlite3 (a dev dependency, approved in package.json's allowScripts) compiles its addon during npm ci when no
# prebuilt binary can be downloaded: node-gyp needs a C++ compiler, make, python3 and the Node headers. The headers of
# Debian's/NodeSource's nodejs are in /usr/include/node: pointing node-gyp there avoids a download from nodejs.org.
step "C++ toolchain and Node headers for better-sqlite3"
if ! command -v g++ >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1 || ! command -v python3 >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends g++ make python3
fi
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ] && [ "$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")" = /usr ]; then
  export npm_config_nodedir=/usr
fi

step "Python venv with the reference feed server (PyPI zeroeventhub)"
req=tests/ref_server/requirements.txt
if [ ! -x .venv/bin/python ] || ! cmp -s "$req" .venv/requirements.installed; then
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r "$req"
  cp "$req" .venv/requirements.installed
fi

step "npm packages (package-lock.json)"
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund
  cp package-lock.json node_modules/.package-lock.installed
elif ! cmp -s package-lock.json node_modules/.package-lock.installed; then
  # An existing tree is updated in place, never wiped (other tools may be using it).
  npm install --no-audit --no-fund
  cp package-lock.json node_modules/.package-lock.installed
fi

# An addon built for another Node (or an install whose scripts did not run) fails to load: build it again.
step "better-sqlite3 native addon"
if ! node -e "new (require('better-sqlite3'))(':memory:').close()" >/dev/null 2>&1; then
  npm rebuild better-sqlite3
  node -e "new (require('better-sqlite3'))(':memory:').close()"
fi
