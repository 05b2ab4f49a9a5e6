#!/usr/bin/env bash
# Interop against the real reference server (PyPI zeroeventhub on 127.0.0.1): Node, headless Chromium, workerd, and
# the README's usage example.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 900 npm run --silent test:interop
