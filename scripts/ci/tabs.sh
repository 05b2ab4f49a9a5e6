#!/usr/bin/env bash
# Tabs mode of consume(): one consumer per feed key across browser tabs (Web Locks + BroadcastChannel). Its Node unit
# tests (off without Web Locks, option checks, the protocol over a Web Locks stand-in) run in js-test; here headless
# Chromium: three tabs consume the reference feed into IndexedDB while the leader tab is closed at random moments.
# Prints leader closes, events, duplicates, losses and remote notifications.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 300 node --test --test-timeout=240000 --test-force-exit tests/browser/tabs.test.mjs
