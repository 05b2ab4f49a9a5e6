#!/usr/bin/env bash
# d1Store's kill test: examples/workers-d1's consumer in Miniflare on a persisted D1 database, its workerd process (the
# Worker and D1) SIGKILLed 30 times (at random, after the handler, while the batch commits) and started again; prints
# kills, events, duplicates and losses (~35 s). Needs dist/ (build step).
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 200 node --test --test-timeout=180000 --test-force-exit tests/stores/kill-d1.test.mjs
