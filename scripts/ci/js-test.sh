#!/usr/bin/env bash
# TypeScript type check and the wrapper's unit tests.
set -euo pipefail
cd "$(dirname "$0")/../.."
npm run --silent typecheck
npm run --silent test:unit
