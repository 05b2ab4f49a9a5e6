#!/usr/bin/env bash
# The demo: builds the package, starts the reference feed (127.0.0.1:8400) with its live feed /live/v1 (4 partitions,
# 50 events/s and a burst of 500 every 10 s; see tests/ref_server/app.py) and the dashboard page (127.0.0.1:8080),
# prints the URLs and stops both on Ctrl-C. Ports: FEED_PORT / DEMO_PORT; DEMO_SKIP_BUILD=1 reuses an existing dist/.
# The live feed's shape: LIVE_RATE (events/s), LIVE_PARTITIONS, LIVE_BURST (events), LIVE_BURST_EVERY (seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
FEED_PORT="${FEED_PORT:-8400}"
DEMO_PORT="${DEMO_PORT:-8080}"
LIVE_RATE="${LIVE_RATE:-50}"
LIVE_PARTITIONS="${LIVE_PARTITIONS:-4}"
LIVE_BURST="${LIVE_BURST:-500}"
LIVE_BURST_EVERY="${LIVE_BURST_EVERY:-10}"

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
.venv/bin/python tests/ref_server/app.py --port "$FEED_PORT" --live-rate "$LIVE_RATE" \
  --live-partitions "$LIVE_PARTITIONS" --live-burst "$LIVE_BURST" --live-burst-every "$LIVE_BURST_EVERY" \
  >"$logdir/feed.log" 2>&1 &
pids+=($!)
node www/server.mjs --port "$DEMO_PORT" >"$logdir/www.log" 2>&1 &
pids+=($!)
wait_listening "$logdir/feed.log" "reference feed server"
wait_listening "$logdir/www.log" "demo page server"

echo
live="http://127.0.0.1:$FEED_PORT/live/v1"
page="http://127.0.0.1:$DEMO_PORT/"
# The page defaults to http://127.0.0.1:8400/live/v1 with 4 partitions; other values go in its query string.
[[ "$FEED_PORT" == 8400 && "$LIVE_PARTITIONS" == 4 ]] || page="$page?feed=$live&partitions=$LIVE_PARTITIONS"
echo "  feed:  $live   (live: $LIVE_PARTITIONS partitions, $LIVE_RATE events/s, $LIVE_BURST every $LIVE_BURST_EVERY s)"
echo "         http://127.0.0.1:$FEED_PORT/feed/v1   (static: 4 partitions x 2,500 events; PyPI zeroeventhub handler)"
echo "  demo:  $page"
echo
echo "  Ctrl-C stops both."
wait -n "${pids[@]}"
