#!/usr/bin/env bash
# feedpump/otel: spans and metrics through the OpenTelemetry SDK's in-memory exporters, and feed.state / stats() /
# onRequest / onResponse / logger, over real HTTP on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 300 node --test --test-concurrency=1 --test-timeout=120000 tests/otel/ tests/fault/observe.test.mjs
