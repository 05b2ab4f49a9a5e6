#!/usr/bin/env bash
# The SQL cursor stores (feedpump/postgres, feedpump/sqlite, feedpump/d1) against real databases: a throwaway
# PostgreSQL server (tests/db/postgres.mjs starts and stops it), better-sqlite3 files, D1 in Miniflare (workerd). The
# store contract and each store's own cases, the type-level tests, then the kill tests, which print kills, events,
# duplicates and losses. Run after the build.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 120 node_modules/.bin/tsc -p tests/stores
timeout 180 node --test --test-concurrency=1 --test-timeout=90000 --test-force-exit tests/stores/
