#!/usr/bin/env bash
# The demo dashboard (www/) in headless Debian Chromium against the reference server's live feed: start, events flow,
# reload resumes from the IndexedDB cursors with every event applied exactly once, stop; retries and errors in the log.
# Saves tests/www/artifacts/dashboard.png and dashboard-420.png (a phone's width, ?autostart=1, no horizontal overflow).
# Needs dist/ (scripts/build.sh) and the venv (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 300 node --test --test-concurrency=1 --test-timeout=180000 --test-force-exit tests/www/dashboard.test.mjs
