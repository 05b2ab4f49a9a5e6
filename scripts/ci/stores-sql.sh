#!/usr/bin/env bash
# The SQL cursor stores (feedpump/postgres, feedpump/sqlite, feedpump/d1) against real databases: a throwaway
# PostgreSQL server (tests/db/postgres.mjs starts and stops it), better-sqlite3 files, D1 in Miniflare (workerd). The
# type-level tests, the store contract and each store's own cases, then the kill tests of PostgreSQL and SQLite, which
# print kills, events, duplicates and losses (D1's kill test is the stores-d1 step), and the PostgreSQL harness's
# watchdog (tests/db/watchdog.test.mjs: no server outlives its test process). Needs dist/ (build step).
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 120 node_modules/.bin/tsc -p tests/stores
timeout 240 node --test --test-concurrency=1 --test-timeout=120000 --test-force-exit \
  tests/stores/subpaths.test.mjs tests/stores/postgres.test.mjs tests/stores/sqlite.test.mjs tests/stores/d1.test.mjs tests/stores/kill.test.mjs tests/db/watchdog.test.mjs
