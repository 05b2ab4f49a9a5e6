#!/usr/bin/env bash
# The runnable examples (examples/), each from the packed tarball as a user installs it: the Vite app built and run in
# headless Chromium, the plain <script type="module"> page in Chromium, the Node script, and the Workers example
# bundled by `wrangler deploy --dry-run` and run in workerd; the OpenTelemetry examples (node-otel, workers-otel:
# tests/examples/otel.test.mjs) with the SDK's in-memory exporters, their spans and metrics checked against the
# requests the server saw; all against the reference feed. Needs dist/ (build step).
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 720 npm run --silent test:examples
# docs/workers.md's measuring script, as documented (one small page: it checks every event is read; its times are
# not asserted), so the script the page tells users to copy keeps working.
timeout 120 node tests/examples/workers-page-cpu.mjs 100
