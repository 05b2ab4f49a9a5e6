#!/usr/bin/env bash
# Runs the reference ZeroEventHub server (tests/ref_server/app.py) on 127.0.0.1, creating .venv first if missing.
# Usage: scripts/ref-server.sh [--port 8400]   (--port 0 picks a free port; it prints "LISTENING <port>")
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c 'import zeroeventhub, uvicorn' 2>/dev/null; then
  echo "== creating .venv (tests/ref_server/requirements.txt)" >&2
  python3 -m venv .venv
  .venv/bin/pip install --quiet -r tests/ref_server/requirements.txt
fi
exec .venv/bin/python tests/ref_server/app.py "$@"
