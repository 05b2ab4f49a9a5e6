#!/usr/bin/env bash
# Exactly-once consumption with cursor stores (their Node unit tests run in js-test): kill tests against the reference
# server on real IndexedDB in headless Chromium (page closed/reloaded 60 times, plus the IndexedDB store's own cases)
# and on Durable Objects in workerd (objects reset from outside and mid-batch). Each prints kills, events, duplicates
# and losses.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 400 node --test --test-concurrency=1 --test-timeout=240000 --test-force-exit \
  tests/browser/stores.test.mjs tests/browser/kill.test.mjs tests/workerd/kill.test.mjs
