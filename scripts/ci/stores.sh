#!/usr/bin/env bash
# Exactly-once consumption with cursor stores: the store and consume() unit tests (Node, fake-indexeddb), then the kill
# tests against the reference server (and the IndexedDB store's cases on Chromium's real IndexedDB): real IndexedDB in headless Chromium (page closed/reloaded 60 times) and Durable
# Objects in workerd (objects reset from outside and mid-batch). Each prints kills, events, duplicates and losses.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 120 node --test --test-timeout=60000 tests/js/unit/stores.test.mjs tests/js/unit/consume.test.mjs
timeout 400 node --test --test-concurrency=1 --test-timeout=240000 --test-force-exit \
  tests/browser/stores.test.mjs tests/browser/kill.test.mjs tests/workerd/kill.test.mjs
