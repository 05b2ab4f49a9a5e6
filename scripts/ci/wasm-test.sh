#!/usr/bin/env bash
# The transport's wasm-bindgen suite (tests/common) under Node, then in headless Debian Chromium as a page and as a
# dedicated worker. webdriver.json at the crate root holds Chromium's flags.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
WASM_BINDGEN_TEST_ONLY_NODE=1 cargo test -p feedpump --target wasm32-unknown-unknown --test node --test simd
CHROMEDRIVER=/usr/bin/chromedriver WASM_BINDGEN_TEST_ONLY_WEB=1 WASM_BINDGEN_TEST_TIMEOUT=60 \
  cargo test -p feedpump --target wasm32-unknown-unknown --test browser --test worker
