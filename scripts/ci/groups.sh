#!/usr/bin/env bash
# Consumer groups (feedpump/group) against a real PostgreSQL server (tests/db/postgres.mjs starts and stops a
# throwaway one) and the reference server's 8-partition feed: the assignment, rebalancing, the lease fence, graceful
# stop, pause/resume and status (tests/group/group.test.mjs), then the kill test: worker processes SIGKILLed,
# SIGSTOPped past their lease and resumed, and added during the run (tests/group/kill.test.mjs), which prints kills,
# stops, joins, rebalances, events, duplicates and losses. Run after the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 120 node_modules/.bin/tsc -p tests/group
timeout 240 node --test --test-concurrency=1 --test-timeout=180000 --test-force-exit tests/group/
