#!/usr/bin/env bash
# Several base URLs: a feed over two reference servers on 127.0.0.1, the primary stopped and restarted mid-run; every
# event exactly once. The same over two FeedAPI v2 servers (tests/v2_server, one process each, different tokens):
# rediscovery on each URL, openFeed and consume(). (The core's URL choice itself is unit-tested with simulated time in
# core-test.)
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 300 node --test --test-concurrency=1 --test-timeout=180000 --test-force-exit tests/failover/
