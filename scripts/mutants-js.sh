#!/usr/bin/env bash
# The two commands of stryker.config.mjs, run in Stryker's sandbox (a copy of the repo with mutants instrumented).
#   build: compile the instrumented js/src once to dist/ without type checking (mutants do not type-check), plus the
#          wasm bindings as scripts/build.sh copies them.
#   test:  the Node tests, run once per mutant; MUTANT_TESTS chooses them (default: every Node unit test), and
#          MUTANT_TEST_CONCURRENCY how many test files run at once (default 1).
set -euo pipefail
case "${1:-}" in
  build)
    # The sandbox lies in <repo>/.stryker-tmp/: node resolves packages from the repo's node_modules above it.
    tsc=node_modules/typescript/bin/tsc
    [ -f "$tsc" ] || tsc=../../node_modules/typescript/bin/tsc
    node "$tsc" -p js --noCheck
    mkdir -p dist/wasm
    cp js/src/wasm/feedpump.js js/src/wasm/feedpump.d.ts js/src/wasm/feedpump_bg.wasm dist/wasm/
    ;;
  test)
    # shellcheck disable=SC2086 # a list of paths
    exec node --test --test-concurrency="${MUTANT_TEST_CONCURRENCY:-1}" --test-timeout=60000 --test-force-exit ${MUTANT_TESTS:-tests/js/unit/}
    ;;
  *)
    echo "usage: $0 build|test" >&2
    exit 2
    ;;
esac
