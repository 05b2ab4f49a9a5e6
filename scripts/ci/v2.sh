#!/usr/bin/env bash
# The FeedAPI v2 test server (tests/v2_server) checked against the SPEC's rules over real HTTP on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 300 node --test --test-force-exit tests/v2_server/
