#!/usr/bin/env bash
# TypeScript type check, no import cycle in js/src (scripts/cycles.mjs), and the wrapper's unit tests: on the machine's
# Node (20), then on Node 24, the current LTS, which has a global `navigator` with Web Locks (tabs mode's default in
# the Node entry point, the tests' stand-ins for navigator). Node 24 is the npm registry's `node` package, pinned in
# tests/node24 and installed here with npm ci.
set -euo pipefail
cd "$(dirname "$0")/../.."
npm run --silent typecheck
node scripts/cycles.mjs
npm run --silent test:unit
lock=tests/node24/package-lock.json
if ! cmp -s "$lock" tests/node24/node_modules/.package-lock.installed 2>/dev/null; then
  npm ci --prefix tests/node24 --no-audit --no-fund
  cp "$lock" tests/node24/node_modules/.package-lock.installed
fi
node24=tests/node24/node_modules/.bin/node
echo "unit tests on Node $("$node24" --version)"
"$node24" --test --test-reporter=tap --test-timeout=60000 'tests/js/unit/*.test.mjs'
