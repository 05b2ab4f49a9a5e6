#!/usr/bin/env bash
# Interop against the real reference server (PyPI zeroeventhub on 127.0.0.1): Node, headless Chromium, workerd, and
# the README's usage example.
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 900 node --test --test-concurrency=1 --test-timeout=300000 tests/interop/
