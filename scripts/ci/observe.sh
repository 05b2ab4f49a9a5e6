#!/usr/bin/env bash
# Observability (docs/observability.md): feed.state / stats() / onRequest / onResponse / logger over the scripted server,
# feedpump/otel through the OpenTelemetry SDK's in-memory exporters, and consume({ pauseWhenHidden }) in Chromium.
# All over real HTTP on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 300 node --test --test-concurrency=1 --test-timeout=120000 --test-force-exit tests/otel/ tests/fault/observe.test.mjs tests/browser/pause.test.mjs
