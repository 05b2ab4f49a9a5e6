#!/usr/bin/env bash
# TypeScript type check, no import cycle in js/src (scripts/cycles.mjs), and the wrapper's unit tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
npm run --silent typecheck
node scripts/cycles.mjs
npm run --silent test:unit
