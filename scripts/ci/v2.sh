#!/usr/bin/env bash
# The FeedAPI v2 test server (tests/v2_server) checked against the SPEC's rules over real HTTP on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 300 node --test --test-force-exit tests/v2_server/
# The "one Durable Object per partition" pattern over v2 in workerd (Miniflare), against that server.
timeout 300 node --test --test-concurrency=1 --test-timeout=180000 --test-force-exit tests/workerd/v2-partitions.test.mjs
