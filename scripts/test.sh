#!/usr/bin/env bash
# The whole test suite: installs what is missing, then runs every step of scripts/ci in order. Each step can also be
# run alone (e.g. `bash scripts/ci/core-test.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The one list of steps, in order; every scripts/ci/*.sh must be in it (a step left out would never run).
steps=(fmt lint core-test wasm-test build js-test types cli docs interop fault observe failover stores stores-sql stores-d1 groups tabs dashboard v2 examples pack publish bench size)
for f in scripts/ci/*.sh; do
  name=$(basename "$f" .sh)
  [[ " ${steps[*]} " == *" $name "* ]] || { echo "scripts/test.sh: step $name is not in the step list" >&2; exit 1; }
done
start=$(date +%s)
for s in "${steps[@]}"; do
  t0=$(date +%s)
  printf '\n==== %s\n' "$s"
  bash "scripts/ci/$s.sh"
  printf '==== %s: ok (%ss)\n' "$s" "$(( $(date +%s) - t0 ))"
done
printf '\nall steps passed in %ss\n' "$(( $(date +%s) - start ))"
