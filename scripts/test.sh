#!/usr/bin/env bash
# The whole test suite: installs what is missing, then runs every step of scripts/ci in order. Each step can also be
# run alone (e.g. `bash scripts/ci/core-test.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
start=$(date +%s)
for s in fmt lint core-test wasm-test build js-test types cli docs interop fault observe failover stores stores-sql stores-d1 groups tabs dashboard v2 examples pack publish bench size; do
  t0=$(date +%s)
  printf '\n==== %s\n' "$s"
  bash "scripts/ci/$s.sh"
  printf '==== %s: ok (%ss)\n' "$s" "$(( $(date +%s) - t0 ))"
done
printf '\nall steps passed in %ss\n' "$(( $(date +%s) - start ))"
