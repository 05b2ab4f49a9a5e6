#!/usr/bin/env bash
# CI: runs the benchmark once in quick mode (tiny sizes, one round) in Node, Chromium and workerd, only to prove it
# works end to end. No assertions on speed: the numbers live in BENCHMARKS.md (`npm run bench` on a quiet machine).
set -euo pipefail
cd "$(dirname "$0")/../.."
timeout 120 npm run --silent bench:quick > /dev/null
echo "bench: quick mode ok"
