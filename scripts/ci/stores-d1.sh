#!/usr/bin/env bash
# d1Store's kill test: examples/workers-d1's consumer in Miniflare (workerd) on a persisted D1 database, its process
# group SIGKILLed 30 times (at random, after the handler, while the batch commits); prints kills, events, duplicates
# and losses. Each kill restarts workerd (~2 s here), which makes this the longest store step (~90 s). Needs dist/.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 200 node --test --test-timeout=180000 --test-force-exit tests/stores/kill-d1.test.mjs
