#!/usr/bin/env bash
# The demo: builds the package, starts the reference feed (127.0.0.1:8400) and the demo page server (127.0.0.1:8080),
# prints the URL and stops both on Ctrl-C. Ports: FEED_PORT / DEMO_PORT; DEMO_SKIP_BUILD=1 reuses an existing dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
FEED_PORT="${FEED_PORT:-8400}"
DEMO_PORT="${DEMO_PORT:-8080}"

# The wasm target, wasm-bindgen-cli, the venv with the reference server, npm packages (no browser needed).
bash scripts/setup.sh --no-browser
if [[ "${DEMO_SKIP_BUILD:-0}" == 1 && -f dist/entrypoints/web.js ]]; then
  echo "== demo: DEMO_SKIP_BUILD=1, using the existing dist/"
else
  echo "== demo: build"
  bash scripts/build.sh
fi

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "== demo: stopped"
}
trap cleanup EXIT INT TERM

# Waits until a child prints "LISTENING <port>" (both servers do once their socket accepts connections).
wait_listening() {
  local log=$1 name=$2
  for _ in $(seq 1 300); do
    grep -q '^LISTENING ' "$log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "== demo: $name did not start:" >&2
  cat "$log" >&2
  exit 1
}

logdir="$(mktemp -d)"
.venv/bin/python tests/ref_server/app.py --port "$FEED_PORT" >"$logdir/feed.log" 2>&1 &
pids+=($!)
node www/server.mjs --port "$DEMO_PORT" >"$logdir/www.log" 2>&1 &
pids+=($!)
wait_listening "$logdir/feed.log" "reference feed server"
wait_listening "$logdir/www.log" "demo page server"

echo
echo "  feed:  http://127.0.0.1:$FEED_PORT/feed/v1   (4 partitions x 2,500 events; PyPI zeroeventhub handler)"
echo "  demo:  http://127.0.0.1:$DEMO_PORT/"
echo
echo "  Ctrl-C stops both."
wait -n "${pids[@]}"
