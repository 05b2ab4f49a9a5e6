#!/usr/bin/env bash
# The `feedpump` CLI (dist/cli/main.js, the package's bin) as a child process against the reference server (v1) and
# the v2 reference server: events, filters, cursors, formats, progress, live mode, Ctrl-C, a closed pipe, exit codes.
# Needs dist/ (scripts/build.sh) and the venv (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 600 npm run --silent test:cli
